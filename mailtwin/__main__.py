from mailtwin.cli import entry

entry()
