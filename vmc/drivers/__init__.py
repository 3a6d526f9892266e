"""Drivers: the front door shared by the CLI and the API, the run of one configuration, and resource checks.
(Not `vmc/run/`: `vmc.run` is the API's function.)"""
