"""Two engines over real UDP sockets on 127.0.0.1 (the asyncio driver of
`wansim.interop`): the same sans-I/O objects that run in the simulation and in memory
complete a hybrid handshake, a Child SA rekey and an IKE SA rekey with real sockets and
the wall clock, then delete the SA."""

from __future__ import annotations

import asyncio

from test_ike_engine import configs

from wansim.interop.session import initiate, respond


def test_hybrid_handshake_and_rekeys_over_loopback_udp():
    ci, cr = configs("aes256gcm16-prfsha256-x25519-ke1_mlkem768", "aes256gcm16-x25519-ke1_mlkem768")

    async def main():
        ready: asyncio.Future = asyncio.get_running_loop().create_future()
        responder = asyncio.create_task(
            respond(cr, ("127.0.0.1", 0), timeout_s=20, on_ready=ready.set_result)
        )
        address = await asyncio.wait_for(ready, 10)
        result = await initiate(ci, address, rekey_child=True, rekey_ike=True, timeout_s=20)
        return result, await responder

    initiator, responder = asyncio.run(main())
    assert initiator.failure is None and responder.failure is None
    exchanges = [m.exchange for m in initiator.sent]
    assert exchanges.count("IKE_INTERMEDIATE") == 1 and exchanges.count("IKE_FOLLOWUP_KE") == 2
    assert len(initiator.key_lines) == 3  # IKE_SA_INIT, IKE_INTERMEDIATE, IKE rekey
