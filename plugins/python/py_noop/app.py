"""The Python no-op task (ABI v2): returns `null`. `bulkhead bench` times its attempts to show
what a large (18 MB) interpreter component costs per attempt against a native `python3`."""

import wit_world


class WitWorld(wit_world.WitWorld):
    def run(self, task) -> str:
        return "null"
