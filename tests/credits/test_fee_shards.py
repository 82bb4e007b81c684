"""The platform's fee income over FEE_ACCOUNT_SHARDS accounts: a capture pays its fee into one
chosen by its hold, so captures at once lock different rows; a refund takes the fee's share back
out of that same account; the fees add up to what every capture took."""

from __future__ import annotations

from django.db.models import Sum

from credits import services
from credits.models import Account, Entry, Hold
from tests.actions import platform_fees


def captured(alice, rex, n: int) -> list[Hold]:
    holds = []
    for i in range(n):
        hold = services.hold_place(
            owner=alice.owner, amount=2500, reference=f"t{i}", subject=f"t{i}"
        )
        holds.append(services.hold_capture(hold=hold, price=2500, payee_id=rex.id))
    return holds


def test_captures_spread_their_fees_over_the_shards(settings, alice, rex):
    settings.FEE_ACCOUNT_SHARDS = 4
    holds = captured(alice, rex, 8)

    fee_accounts = Account.objects.filter(kind="fees")
    used = {hold.fee_account_id for hold in holds}
    assert fee_accounts.count() == 4  # opened together, the first time a fee needed one
    assert sorted(fee_accounts.values_list("shard", flat=True)) == [0, 1, 2, 3]
    assert len(used) == 4
    for hold in holds:
        assert hold.fee_account.shard == hold.pk % 4
        assert (
            Entry.objects.get(
                transaction__reference=f"{hold.reference}:capture", kind="fee"
            ).account_id
            == hold.fee_account_id
        )
    assert platform_fees() == 8 * 250


def test_a_refund_takes_the_fee_back_from_the_account_that_received_it(settings, alice, rex):
    settings.FEE_ACCOUNT_SHARDS = 4
    first, second = captured(alice, rex, 2)
    before = {a.pk: a.balance for a in Account.objects.filter(kind="fees")}

    services.refund_issue(hold=second, amount=2500, reference="r")

    after = {a.pk: a.balance for a in Account.objects.filter(kind="fees")}
    changed = {pk for pk in after if after[pk] != before[pk]}
    assert changed == {second.fee_account_id} != {first.fee_account_id}
    assert after[second.fee_account_id] == before[second.fee_account_id] - 250


def test_a_hold_captured_before_the_split_refunds_from_the_first_fee_account(settings, alice, rex):
    settings.FEE_ACCOUNT_SHARDS = 1
    (hold,) = captured(alice, rex, 1)
    Hold.objects.filter(pk=hold.pk).update(fee_account=None)  # as captured before the field
    settings.FEE_ACCOUNT_SHARDS = 8
    hold.refresh_from_db()

    services.refund_issue(hold=hold, amount=1000, reference="r")

    shard0 = Account.objects.get(kind="fees", shard=0)
    assert shard0.balance == 250 - 100
    assert Account.objects.filter(kind="fees").aggregate(s=Sum("balance"))["s"] == 150
