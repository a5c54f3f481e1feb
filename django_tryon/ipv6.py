"""IPv6 addresses that stand for an IPv4 address, and which addresses are public.

IPv6's transition mechanisms write an IPv4 address inside an IPv6 one: a
connection to ``64:ff9b::a00:1`` goes, through the network's NAT64 gateway, to
``10.0.0.1``; one to ``2002:a00:1::1`` goes, by 6to4, to a host behind
``10.0.0.1``. Python's :mod:`ipaddress` judges such an address by its IPv6 prefix
alone (before Python 3.13 both of those are "global"), so whoever decides whether
an address is public, or counts clients by address, looks at the IPv4 address
it stands for.
"""

import ipaddress

#: RFC 6052's well-known NAT64 prefix: the last 32 bits are the IPv4 address.
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
#: RFC 2765's IPv4-translated addresses (SIIT): the last 32 bits again.
IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")

#: Ranges that are never a public host's address, which :mod:`ipaddress` of
#: Python 3.11 counts as global.
NEVER_PUBLIC = (
    # RFC 8215: NAT64 prefixes a network chooses for its own use (any IPv4 inside).
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    # RFC 4291's IPv4-compatible addresses, deprecated; some stacks still route them.
    ipaddress.IPv6Network("::/96"),
    # RFC 3879's site-local addresses, deprecated, private to a site.
    ipaddress.IPv6Network("fec0::/10"),
)


def reached_ipv4(ip):
    """The IPv4 address a connection to ``ip`` reaches, or ``None`` if it reaches
    ``ip`` itself: IPv4-mapped, IPv4-translated, NAT64 (well-known prefix) and 6to4
    addresses stand for the IPv4 address written inside them."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64_WELL_KNOWN or ip in IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def judged_form(ip):
    """``ip`` as it is to be judged: the IPv4 address it stands for, if any."""
    return reached_ipv4(ip) or ip


def is_public(ip):
    """Whether ``ip`` is a public unicast address, judged by the IPv4 address it
    stands for where it stands for one (:func:`reached_ipv4`)."""
    ip = judged_form(ip)
    if isinstance(ip, ipaddress.IPv6Address) and any(ip in net for net in NEVER_PUBLIC):
        return False
    return ip.is_global and not ip.is_multicast


def client_ipv4(ip):
    """The IPv4 address of the client behind ``ip``, if it is one, for counting
    clients: as :func:`reached_ipv4`, and a Teredo address is its client's (one
    IPv4 client is given as many Teredo addresses as it asks for)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.teredo is not None:
        return ip.teredo[1]
    return reached_ipv4(ip)
