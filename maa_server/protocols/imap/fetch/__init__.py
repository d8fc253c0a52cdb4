"""IMAP FETCH: item parsing (items.py), response rendering (render.py), BINARY (binary.py).

    req = parse_fetch_items(arg, parse_fetch_modifiers(mods) if mods else None)
    line = await render_fetch(req, seq, info, mailbox, uid_command=..., recent=..., condstore=...)
"""

from maa_server.protocols.imap.fetch.binary import UnknownCte
from maa_server.protocols.imap.fetch.items import (
    FetchItem,
    FetchRequest,
    SectionItem,
    SimpleItem,
    parse_fetch_items,
    parse_fetch_modifiers,
)
from maa_server.protocols.imap.fetch.render import (
    format_flag_list,
    format_internal_date,
    ordered_items,
    render_fetch,
)

__all__ = [
    "FetchItem", "FetchRequest", "SectionItem", "SimpleItem", "UnknownCte",
    "format_flag_list", "format_internal_date", "ordered_items",
    "parse_fetch_items", "parse_fetch_modifiers", "render_fetch",
]
