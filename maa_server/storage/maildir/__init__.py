"""Dovecot-compatible Maildir storage: `MaildirStore` (store.py) and `MaildirMailbox` (mailbox.py).

Layers: filename/uidlist/keywords/subscriptions are sans-IO formats; dotlock,
uidvalidity, uidlist_file do the file work; folder/saving/changes are the
blocking engine of one folder; mailbox and store are the async faces.
"""
