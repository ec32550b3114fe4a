"""wansim: a discrete-event simulator of an anycast IPsec WAN whose tunnel endpoints
run real hybrid post-quantum IKEv2 handshakes (RFC 7296, RFC 9242, RFC 9370,
draft-ietf-ipsecme-ikev2-mlkem)."""

__version__ = "0.1.0"
