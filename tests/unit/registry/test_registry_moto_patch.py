"""localcloud.patches.dynamodb_atomic: moto's DynamoDB made atomic under threads, with
transactions that roll back exactly what they touched."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from localcloud.patches import dynamodb_atomic


def _table(ddb: Any) -> None:
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def _key(pk: str, sk: str = "x") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def test_installed_and_idempotent(aws: None) -> None:
    assert dynamodb_atomic.installed()
    dynamodb_atomic.install()
    assert dynamodb_atomic.installed()


def test_a_failed_transaction_restores_exactly_what_it_touched(ddb: Any) -> None:
    _table(ddb)
    ddb.put_item(TableName="t", Item={**_key("counter"), "n": {"N": "1"}})
    ddb.put_item(TableName="t", Item={**_key("other"), "v": {"S": "keep"}})
    with pytest.raises(ddb.exceptions.TransactionCanceledException) as cancelled:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {**_key("new"), "v": {"S": "x"}}}},
                {
                    "Update": {
                        "TableName": "t",
                        "Key": _key("counter"),
                        "UpdateExpression": "SET n = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": "t",
                        "Key": _key("other"),
                        "ConditionExpression": "v = :nope",
                        "ExpressionAttributeValues": {":nope": {"S": "changed"}},
                    }
                },
            ]
        )
    codes = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert codes == ["None", "None", "ConditionalCheckFailed"]
    assert "Item" not in ddb.get_item(TableName="t", Key=_key("new"))
    assert ddb.get_item(TableName="t", Key=_key("counter"))["Item"]["n"] == {"N": "1"}
    assert ddb.get_item(TableName="t", Key=_key("other"))["Item"]["v"] == {"S": "keep"}
    assert ddb.scan(TableName="t")["Count"] == 2


def test_a_successful_transaction_applies_every_part(ddb: Any) -> None:
    _table(ddb)
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "t", "Item": {**_key("a"), "v": {"S": "1"}}}},
            {"Put": {"TableName": "t", "Item": {**_key("b"), "v": {"S": "2"}}}},
        ]
    )
    assert ddb.scan(TableName="t")["Count"] == 2


def test_concurrent_counter_transactions_lose_nothing(ddb: Any) -> None:
    """The experiment that showed moto losing updates without the patch (docs/registry.md)."""
    _table(ddb)
    ddb.put_item(TableName="t", Item={**_key("counter"), "n": {"N": "0"}})

    def register(_: int) -> int:
        while True:
            n = int(ddb.get_item(TableName="t", Key=_key("counter"), ConsistentRead=True)["Item"]["n"]["N"])
            try:
                ddb.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": "t",
                                "Key": _key("counter"),
                                "UpdateExpression": "SET n = :next",
                                "ConditionExpression": "n = :n",
                                "ExpressionAttributeValues": {":n": {"N": str(n)}, ":next": {"N": str(n + 1)}},
                            }
                        },
                        {
                            "Put": {
                                "TableName": "t",
                                "Item": _key(f"v{n + 1}"),
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                    ]
                )
                return n + 1
            except ddb.exceptions.TransactionCanceledException:
                continue

    with ThreadPoolExecutor(20) as pool:
        numbers = list(pool.map(register, range(20)))
    assert sorted(numbers) == list(range(1, 21))
    assert ddb.scan(TableName="t")["Count"] == 21
