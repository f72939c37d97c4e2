"""The pure reconcile logic: which nodes belong to a GPU pool and which taints they get."""

from __future__ import annotations

import pytest
from taint_reconciler.logic import (
    Pool,
    Taint,
    desired_taints,
    json_patch,
    matching_pools,
    plan_node,
)

TAINT = Taint("nvidia.com/gpu", "present", "NoSchedule")
POOLS = (
    Pool("a100", {"gpu-type": "a100", "node-pool": "ml-training"}),
    Pool("h100", {"gpu-type": "h100", "node-pool": "ml-training"}),
)


def node(name="n1", labels=None, taints=None, rv="42"):
    spec = {} if taints is None else {"taints": taints}
    return {"metadata": {"name": name, "labels": labels or {}, "resourceVersion": rv}, "spec": spec}


A100 = {"gpu-type": "a100", "node-pool": "ml-training", "kubernetes.io/hostname": "n1"}


class TestMatchingPools:
    def test_node_with_all_pool_labels_belongs_to_the_pool(self):
        assert matching_pools(A100, POOLS) == ("a100",)

    def test_one_missing_label_is_no_match(self):
        assert matching_pools({"gpu-type": "a100"}, POOLS) == ()

    def test_a_different_label_value_is_no_match(self):
        assert matching_pools({"gpu-type": "a100", "node-pool": "batch"}, POOLS) == ()

    def test_a_pool_without_labels_matches_nothing(self):
        # A labelless pool would taint every node of the cluster: never match it.
        assert matching_pools(A100, (Pool("any", {}),)) == ()

    def test_no_labels_at_all(self):
        assert matching_pools(None, POOLS) == ()

    def test_overlapping_pools_are_all_named_sorted(self):
        pools = (*POOLS, Pool("all-training", {"node-pool": "ml-training"}))
        assert matching_pools(A100, pools) == ("a100", "all-training")


class TestDesiredTaints:
    def test_untainted_node_gets_the_taint(self):
        assert desired_taints([], TAINT) == [TAINT.as_dict()]

    def test_none_means_no_taints(self):
        assert desired_taints(None, TAINT) == [TAINT.as_dict()]

    def test_node_with_the_taint_needs_nothing(self):
        assert desired_taints([TAINT.as_dict()], TAINT) is None

    def test_extra_fields_such_as_time_added_do_not_matter(self):
        current = [{**TAINT.as_dict(), "timeAdded": "2026-01-01T00:00:00Z"}]
        assert desired_taints(current, TAINT) is None

    def test_other_taints_are_kept_in_order(self):
        other = [
            {"key": "dedicated", "value": "ml", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
        ]
        assert desired_taints(other, TAINT) == [*other, TAINT.as_dict()]

    def test_same_key_and_effect_with_another_value_is_replaced(self):
        current = [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
        assert desired_taints(current, TAINT) == [TAINT.as_dict()]

    def test_same_key_with_another_effect_is_kept(self):
        # A NoExecute taint of the same key is someone else's decision (e.g. a draining tool).
        current = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoExecute"}]
        assert desired_taints(current, TAINT) == [*current, TAINT.as_dict()]

    def test_empty_value_taint(self):
        taint = Taint("nvidia.com/gpu", "", "NoSchedule")
        assert desired_taints([{"key": "nvidia.com/gpu", "effect": "NoSchedule"}], taint) is None


class TestPlanNode:
    def test_gpu_node_without_taint_is_planned(self):
        plan = plan_node(node(labels=A100), POOLS, TAINT)
        assert plan is not None
        assert plan.node == "n1"
        assert plan.pools == ("a100",)
        assert plan.taints == [TAINT.as_dict()]
        assert "add nvidia.com/gpu=present:NoSchedule" in plan.reason

    def test_cpu_node_is_left_alone(self):
        assert plan_node(node(labels={"node-pool": "cpu"}), POOLS, TAINT) is None

    def test_tainted_gpu_node_is_left_alone(self):
        assert plan_node(node(labels=A100, taints=[TAINT.as_dict()]), POOLS, TAINT) is None

    def test_wrong_value_is_reported_as_replace(self):
        plan = plan_node(
            node(
                labels=A100,
                taints=[{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
            ),
            POOLS,
            TAINT,
        )
        assert plan is not None
        assert plan.reason.startswith(
            "replace nvidia.com/gpu=true:NoSchedule with nvidia.com/gpu=present:NoSchedule"
        )

    def test_never_removes_the_taint_from_a_node_outside_every_pool(self):
        # A node that left a pool (or a GKE GPU node outside our pools) keeps its taint.
        assert plan_node(node(labels={}, taints=[TAINT.as_dict()]), POOLS, TAINT) is None

    def test_node_without_spec_or_metadata_fields(self):
        assert plan_node({"metadata": {"name": "bare"}}, POOLS, TAINT) is None


class TestJsonPatch:
    def test_patch_is_guarded_by_resource_version(self):
        plan = plan_node(node(labels=A100), POOLS, TAINT)
        assert json_patch(plan, "42") == [
            {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
            {"op": "add", "path": "/spec/taints", "value": [TAINT.as_dict()]},
        ]

    @pytest.mark.parametrize("version", [None, ""])
    def test_without_resource_version_no_test_op(self, version):
        plan = plan_node(node(labels=A100), POOLS, TAINT)
        assert [op["op"] for op in json_patch(plan, version)] == ["add"]
