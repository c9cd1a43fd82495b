"""mailtwin: two-way sync of IMAP folders with Maildirs or other IMAP servers."""

__version__ = "0.1.0"
