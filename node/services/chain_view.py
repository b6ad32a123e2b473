"""The members and the rule book schedule, followed from the chain's events instead of asked for each message.

Every signed message a node admits needs its signer's membership and the rule book in force; asked of the chain
each time, that was two `eth_call`s per message (45 % of a loaded node's interpreter). Both change only through
events: the MemberRegistry's `MemberAdded`, `MemberRemoved`, `NodeUrlChanged` (the account is an indexed topic)
and the RuleRegistry's `Scheduled` (a version and the block it activates at, known ahead). A thread reads the new
logs of both contracts every `follow_seconds`; what it has not seen change is answered from memory.

The staleness is bounded and stated (docs/protocol.md, "Membership and rule book checks"):
- an answer from memory is at most one follow interval behind the chain (a failed or slow poll makes the view
  stale after `3 x follow_seconds`, and every question goes to the chain again, as before);
- the version in force is answered as "the version in force at block H" where H is the last block the view
  read, which is exactly true at H (an auditor checks it with `activeAt(H)`);
- while a version is scheduled and not yet active at H, the view does not answer and the chain is asked for
  every message, so a node switches at the activation block as it did before, however fast blocks come.
"""

from __future__ import annotations

import logging
import threading
import time

from web3 import Web3

from chain.registry_client import MemberInfo, MemberRegistryClient
from chain.rules_client import RuleRegistryClient

log = logging.getLogger(__name__)

STALE_AFTER_POLLS = 3
# A gap wider than this since the last read (an outage) is not read log by log: the view forgets what it holds
# and starts again at the head (providers cap the range of one eth_getLogs).
MAX_LOG_RANGE = 5_000


class ChainView:
    def __init__(
        self, web3: Web3, registry: MemberRegistryClient, rules: RuleRegistryClient | None, follow_seconds: float
    ) -> None:
        self.web3 = web3
        self.registry = registry
        self.rules = rules
        self.follow_seconds = follow_seconds
        self.head: int | None = None  # the last block whose events were read
        self._read_at = float("-inf")  # monotonic time of that read
        self._members: dict[str, MemberInfo] = {}
        self._activation_blocks: dict[str, int] = {}  # version -> block: fixed once scheduled
        self._schedule: list[tuple[str, int]] | None = None  # (version, activates at), in activation order
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0
        self.last_error: str | None = None

    # -- answers ---------------------------------------------------------------------------------------------
    def fresh(self) -> bool:
        return self.head is not None and time.monotonic() - self._read_at <= STALE_AFTER_POLLS * self.follow_seconds

    def member(self, address: str) -> MemberInfo:
        """The member as the registry holds it: from memory when followed and unchanged, else from the chain."""
        key = Web3.to_checksum_address(address)
        if self.fresh():
            with self._lock:
                known = self._members.get(key)
            if known is not None:
                return known
        head = self.head
        found = self.registry.member(key)
        with self._lock:
            # Kept only if no poll ran meanwhile (a change read by that poll may be newer than this answer), and
            # only for members: anyone can sign, and a cache of every stranger would grow without bound.
            if found.active and self.fresh() and self.head == head:
                self._members[key] = found
        return found

    def active(self) -> tuple[str, int] | None:
        """(version in force at block H, H) from memory, or None when the chain must be asked (not followed,
        stale, or an activation is due within the margin)."""
        with self._lock:
            head, schedule = self.head, self._schedule
        if not self.fresh() or head is None or schedule is None:
            return None
        current = "0x" + "00" * 32
        for version, at in schedule:
            if at > head:  # an activation to come: the chain answers until it has happened
                return None
            current = version
        return current, head

    # -- following -------------------------------------------------------------------------------------------
    def poll(self) -> None:
        """Read the events since the last poll and forget what they change."""
        head = int(self.web3.eth.block_number)
        contracts = [self.registry.contract.address] + ([self.rules.contract.address] if self.rules else [])
        if self.head is not None and head - self.head > MAX_LOG_RANGE:
            with self._lock:
                self._members.clear()
                self._schedule = None
                self.head = None
        logs = (
            self.web3.eth.get_logs({"address": contracts, "fromBlock": self.head + 1, "toBlock": head})
            if self.head is not None and head > self.head
            else []
        )
        changed_members = {
            Web3.to_checksum_address(bytes(entry["topics"][1])[-20:])
            for entry in logs
            if entry["address"] == self.registry.contract.address and len(entry["topics"]) > 1
        }
        rules_changed = any(self.rules and entry["address"] == self.rules.contract.address for entry in logs)
        schedule = self._schedule
        if self.rules is not None and (schedule is None or rules_changed):
            schedule = self._read_schedule()
        with self._lock:
            for account in changed_members:
                self._members.pop(account, None)
            self._schedule = schedule
            self.head = head
            self._read_at = time.monotonic()
            self.polls += 1

    def _read_schedule(self) -> list[tuple[str, int]]:
        assert self.rules is not None
        schedule = []
        for version in self.rules.activated():
            if version not in self._activation_blocks:
                at = self.rules.version(version).activates_at_block
                assert at is not None  # an activated version has its block
                self._activation_blocks[version] = at
            schedule.append((version, self._activation_blocks[version]))
        return schedule

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="chain-view", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
                self.last_error = None
            except Exception as exc:  # the chain unreachable: answers go to the chain (and fail there) meanwhile
                if self.last_error is None:
                    log.warning("following the chain paused: %s", exc)
                self.last_error = f"{type(exc).__name__}: {exc}"
            self._stop.wait(self.follow_seconds)
