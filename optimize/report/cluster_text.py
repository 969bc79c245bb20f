"""What a cluster run's reports say of where its units ran."""

from __future__ import annotations

from collections import defaultdict
from typing import Any


def cluster_headline(cluster: dict[str, Any]) -> str:
    """One line: the cluster, and the hardware class every measurement ran on."""
    what = f" ({cluster['class']})" if cluster.get("class") else ""
    return (
        f"Ray cluster at {cluster['address']}; every measurement on hardware class "
        f"{cluster['hardware_class']}{what}, one at a time per node"
    )


def units_by_node(cluster: dict[str, Any]) -> dict[str, list[str]]:
    """The units this run ran (not those it reused), by the node that ran them."""
    nodes: dict[str, list[str]] = defaultdict(list)
    for unit in cluster["units"]:
        nodes[unit["node"]].append(unit["unit"])
    return dict(sorted(nodes.items()))
