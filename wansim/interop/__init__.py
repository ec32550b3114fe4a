"""Interoperability with real IKEv2 stacks: a UDP driver for the engine, strongSwan peers."""
