"""The simulation's actors: branch sites (initiators), POPs (responders with CPU pools),
the failure injector, failover strategies and the metrics recorder (issue 5)."""
