"""Sans-I/O IKEv2 with hybrid post-quantum key exchange (RFC 7296, RFC 9242, RFC 9370,
RFC 7383, draft-ietf-ipsecme-ikev2-mlkem): wire codec, proposals, key schedule and engine."""
