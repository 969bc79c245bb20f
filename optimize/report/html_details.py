"""report.html's detail sections: the accuracy repairs, the pick's chain step by step, the
head to head, the operator profile, the chains tried and the environment."""

from __future__ import annotations

import base64
from html import escape

from optimize.build.variant import Variant
from optimize.report.cluster_text import cluster_headline, units_by_node
from optimize.report.contest_table import CONTEST_COLUMNS, contest_intro, contest_rows
from optimize.report.results import Results


def figure_html(png: bytes | None, alt: str, caption: str) -> str:
    """A PNG embedded as a figure with its caption; empty without one."""
    if not png:
        return ""
    data = base64.b64encode(png).decode("ascii")
    caption_html = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return (
        f"<figure><img src='data:image/png;base64,{data}' alt='{escape(alt)}'>"
        f"{caption_html}</figure>"
    )


def repairs_html(results: Results) -> str:
    """What the accuracy fallback kept in float for each variant it repaired, step by step."""
    if not results.repairs:
        return ""
    by_id = {v.id: v for v in results.variants}
    parts = ["<h2>Accuracy fallback</h2>"]
    for record in results.repairs:
        variant = by_id.get(record.variant_id)
        name = variant.label if variant else record.variant_id
        verdict = f" ({variant.verdict})" if variant and variant.verdict else ""
        parts.append(
            f"<p><code>{escape(name)}</code> was outside tolerance{escape(verdict)}: "
            f"{escape(record.note)}.</p>"
        )
        if not record.steps:
            continue
        rows = []
        for step in record.steps:
            stepped = by_id.get(step.variant_id)
            p50 = f"{stepped.p50_ms:.3f}" if stepped and stepped.p50_ms else "–"
            names = ", ".join(step.excluded)
            rows.append(
                f"<tr><td>{len(step.excluded)}</td><td class='reason'>{escape(names)}</td>"
                f"<td>{step.quality:.4f}</td><td>{p50}</td>"
                f"<td class='text'>{escape(step.verdict or 'within tolerance')}</td></tr>"
            )
        parts.append(
            "<div class='scroll'><table><thead><tr><th>nodes in float</th>"
            "<th class='text'>excluded</th><th>quality</th><th>p50 ms</th>"
            f"<th class='text'>verdict</th></tr></thead><tbody>{''.join(rows)}</tbody>"
            "</table></div>"
        )
    return "".join(parts)


def chain_html(results: Results, png: bytes | None) -> str:
    """The pick's passes one by one: seconds, whether each changed the model, its note."""
    pick = results.pick
    if not isinstance(pick, Variant) or not pick.steps:
        return ""
    rows = "".join(
        f"<tr><td class='text'><code>{escape(step.label)}</code></td><td>{step.seconds:.2f}</td>"
        f"<td class='text'>{'yes' if step.changed else 'no'}</td>"
        f"<td class='reason'>{escape(step.note or '')}</td></tr>"
        for step in pick.steps
    )
    return (
        "<h2>The pick, pass by pass</h2>"
        + figure_html(png, "Latency and quality after each pass of the pick", "")
        + "<div class='scroll'><table><thead><tr><th class='text'>pass</th><th>build s</th>"
        f"<th class='text'>changed</th><th class='text'>note</th></tr></thead><tbody>{rows}"
        "</tbody></table></div>"
    )


def contest_html(results: Results) -> str:
    """The head to head of the closest contenders, round by round."""
    contest = results.contest
    if contest is None:
        return ""

    def cell(tag: str, column: str, text: str) -> str:
        align = " class='text'" if column in ("variant", "outcome") else ""
        return f"<{tag}{align}>{escape(text)}</{tag}>"

    head = "".join(cell("th", c, c) for c in CONTEST_COLUMNS)
    rows = "".join(
        "<tr>" + "".join(cell("td", c, cells[c]) for c in CONTEST_COLUMNS) + "</tr>"
        for cells in contest_rows(contest)
    )
    return (
        f"<h2>Head to head</h2><p>{escape(contest_intro(contest))}.</p>"
        f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>"
        "</table></div>"
    )


def op_profile_html(results: Results) -> str:
    """Where the pick spends its time: the costliest operators."""
    if not results.op_profile:
        return ""
    top = max(row["share"] for row in results.op_profile) or 1.0
    rows = "".join(
        f"<tr><td class='text'>{escape(str(row['op_type']))}</td><td>{row['per_run_ms']:.4f}</td>"
        f"<td>{100 * row['share']:.1f}%</td><td>{row['calls_per_run']:g}</td>"
        f"<td class='text'><span class='bar' style='width:{200 * row['share'] / top:.0f}px'>"
        "</span></td></tr>"
        for row in results.op_profile
    )
    return (
        "<h2>Where the pick spends its time</h2><div class='scroll'><table><thead><tr>"
        "<th class='text'>operator</th><th>ms per run</th><th>share</th><th>calls per run</th>"
        f"<th class='text'></th></tr></thead><tbody>{rows}</tbody></table></div>"
        f"<p class='muted small'>Kernel times from {escape(results.profiler_name)} at batch 1 "
        "(profiling adds overhead: read the shares, not the absolute times).</p>"
    )


def chains_tried_html(results: Results) -> str:
    """Every chain the run tried, with why it was tried."""
    if not results.chains:
        return ""
    items = "".join(
        f"<li><code>{escape(' → '.join(c['passes']) or 'baseline')}</code>: "
        f"{escape(str(c['why']))}</li>"
        for c in results.chains
    )
    return f"<h2>Chains tried</h2><ul class='small'>{items}</ul>"


def environment_html(results: Results) -> str:
    """The machine, the packages and, for a cluster run, where each unit ran."""
    env = results.environment
    flags = ", ".join(env.get("cpu_flags", [])) or "none of note"
    entries = {
        "CPU": f"{env.get('cpu_model')} ({env.get('logical_cores')} logical cores; flags: {flags})",
        "Memory": f"{env.get('memory_gb')} GiB",
        "OS": f"{env.get('os')}; Python {env.get('python')}",
        "Versions": ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items()),
        "ONNX Runtime providers": ", ".join(env.get("ort_providers", [])),
        "Source": f"{results.source_path} ({results.source_form}, sha256 {results.source_id})",
    }
    if results.cluster:
        entries["Cluster"] = cluster_headline(results.cluster)
        for node, units in units_by_node(results.cluster).items():
            entries[node] = "; ".join(units)
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in entries.items())
    return f"<h2>Environment</h2><dl class='small'>{items}</dl>"
