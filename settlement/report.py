"""A statement as a finance controller reads it: money as money (2,000.00, never minor units), members by
name, every flow with what it settles, and the payments. Pure: the document and the names in, text out."""

from collections.abc import Callable, Mapping

from settlement.document import MemberShare, Statement


def money_text(minor: int, minor_units: int = 2) -> str:
    """An amount of minor units as money, exactly: 200000 -> "2,000.00", -5 -> "-0.05" (no floats)."""
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**minor_units)
    return f"{sign}{whole:,}" + (f".{frac:0{minor_units}d}" if minor_units else "")


def statement_report(
    statement: Statement, names: Mapping[str, str], currency: str = "CNY", minor_units: int = 2
) -> str:
    """The statement in words and money: its period and status, each member's gains and net, the flows and
    the payments that settle them."""

    def who(address: str) -> str:
        return names.get(address) or names.get(address.lower()) or address[:10]

    def cash(minor: int) -> str:
        return f"{currency} {money_text(minor, minor_units)}"

    period = statement["period"]
    out = [
        f"Statement {statement['id']} for {period['from']} .. {period['to']}: {statement['status']}",
        f"Gain made on delivered goods: {cash(statement['surplus'])} (split by {statement['method']})",
        "",
        "Members:",
    ]
    out += [_member_line(m, who(m["member"]), cash) for m in statement["members"]]
    out += ["", "Flows:"]
    for f in statement["flows"]:
        out.append(f"  {f['kind']:<22} {who(f['from'])} -> {who(f['to'])}: {cash(f['amount'])} ({f['reference'][:18]})")
    out += ["", "Payments:"]
    out += [f"  {who(p['from'])} pays {who(p['to'])} {cash(p['amount'])}" for p in statement["payments"]]
    return "\n".join(out)


def _member_line(m: MemberShare, name: str, cash: Callable[[int], str]) -> str:
    gains = m.get("gains")
    if gains is None:  # format 1: the share of a surplus counted at shortage penalties
        return f"  {name}: share {cash(m['share'])}, net {cash(m['net'])}"
    return (
        f"  {name}: gain from transfers received {cash(gains['from_transfers_received'])}, "
        f"gain from stock supplied {cash(gains['from_stock_supplied'])}, "
        f"share of the joint gain {cash(gains['share_of_joint_gain'])}, net {cash(m['net'])}"
    )
