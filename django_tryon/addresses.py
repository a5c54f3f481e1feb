"""Which client a request comes from, for the throttle and the daily quota.

The address is ``REMOTE_ADDR``, the peer the web server saw. Headers such as
``X-Forwarded-For`` are written by whoever sends the request, so they are read
only when the shop says how many proxies of its own stand in front of Django,
with Django REST framework's ``NUM_PROXIES`` setting, and exactly as DRF's own
throttles read them then: the address that many entries from the end of
``X-Forwarded-For`` (the one the outermost proxy of the shop's saw).

IPv6 clients are counted by their ``/64`` network: one home or phone is given
a whole ``/64`` and picks new addresses in it at will. An IPv6 address that
stands for an IPv4 client (IPv4-mapped, NAT64, 6to4, Teredo) is counted as that
IPv4 address: one IPv4 host has 65,536 ``/64`` networks of 6to4 addresses, and
as many Teredo addresses as it asks for. A port written after the address is not
part of the client.
"""

import ipaddress

from rest_framework.settings import api_settings

from .ipv6 import client_ipv4

IPV6_CLIENT_PREFIX = 64


def client_address(request):
    """The address of the client that sent ``request`` (a Django ``HttpRequest``).

    ``""`` when the server gives none (a unix socket without proxy headers).
    """
    remote_addr = request.META.get("REMOTE_ADDR") or ""
    num_proxies = api_settings.NUM_PROXIES
    # DRF trusts X-Forwarded-For whole when NUM_PROXIES is None: any client could
    # then name any address. Here None means "no proxy": the peer is the client.
    if not num_proxies:
        return remote_addr
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if forwarded is None:
        return remote_addr
    entries = forwarded.split(",")
    chosen = entries[-min(num_proxies, len(entries))].strip()
    # An empty entry names nobody: the proxy that sent it is the best known client.
    return chosen or remote_addr


def client_group(address):
    """What one client is counted as: its address, or its ``/64`` network for IPv6.

    A port after the address is left out (:func:`without_port`). A value that is
    not an address (a proxy that passes on names) is counted as it is.
    """
    try:
        ip = ipaddress.ip_address(without_port(address.strip()))
    except ValueError:
        return address.strip()
    if isinstance(ip, ipaddress.IPv6Address):
        if (ipv4 := client_ipv4(ip)) is not None:
            return str(ipv4)
        # From the integer: a scope id ("%eth0") says nothing of the network.
        return str(ipaddress.IPv6Network((int(ip), IPV6_CLIENT_PREFIX), strict=False))
    return str(ip)


def without_port(address):
    """``address`` without the port some proxies write after it (Azure App Service:
    ``203.0.113.7:51234``; RFC 7239's form for IPv6: ``[2001:db8::1]:443``): a client
    opens each connection from a new port, and would be a new client each time.

    Only a port of digits goes; a bare IPv6 address, whose colons are its own, is
    left as it is.
    """
    if address.startswith("["):
        host, bracket, rest = address[1:].partition("]")
        if bracket and (not rest or (rest[:1] == ":" and rest[1:].isdigit())):
            return host
        return address
    host, colon, port = address.rpartition(":")
    if colon and port.isdigit() and ":" not in host:
        return host
    return address
