#!/usr/bin/python3
"""The PromQL of deploy/ (alert rules, Grafana dashboard) against what sluice really exports.

  exprs.py list RULES DASHBOARD            every expression, with where it comes from
  exprs.py check RULES DASHBOARD SCRAPE [DESIGN]
                                           every metric an expression selects must be a sample
                                           name in SCRAPE (a saved /metrics, OpenMetrics text),
                                           every label it matches on or groups by a label of
                                           those samples, every literal label value one the
                                           scrape has; prints one line per problem, exit 1.
                                           With DESIGN (docs/design.md): a family SCRAPE
                                           declares (# TYPE) but has no samples of (the
                                           exception path, fullnat ports, announced VIPs on an
                                           appliance without them) is checked by its name and
                                           type against SCRAPE and by the labels and values
                                           DESIGN's metrics table gives it
  exprs.py check-live RULES DASHBOARD SCRAPE PREFIX...
                                           check's tests, for the expressions that select a
                                           metric named PREFIX...: each such metric must have
                                           samples in SCRAPE (the e2e tests that run the
                                           exception path, fullnat and announce use it on
                                           their own scrapes); fails if no expression selects one
  exprs.py dashboard DASHBOARD             the dashboard is Grafana JSON we can import: unique
                                           panel ids, datasource and instance variables, every
                                           query panel with targets and refIds, no overlaps
  exprs.py promtool-dir RULES DASHBOARD DIR
                                           writes DIR/sluice.rules.yml (the rules without their
                                           annotations, for `promtool test rules`, whose
                                           expected alerts would otherwise have to repeat the
                                           prose) and DIR/dashboard.rules.yml (every dashboard
                                           expression as a recording rule, Grafana's variables
                                           replaced, so `promtool check rules` parses them)
  exprs.py eval-dir DASHBOARD SCRAPE1 SCRAPE2 DIR [DESIGN]
                                           writes DIR/eval.test.yml and DIR/eval.rules.yml for
                                           `promtool test rules`: two real scrapes (a minute
                                           apart as far as promtool knows) of two instances as
                                           input series, and every dashboard expression must
                                           give at least one series at the second (a join on a
                                           label the series lack, or a many-to-many match,
                                           gives none); expressions that end in a comparison
                                           filter (`> 0`) may be empty. With DESIGN, a
                                           family SCRAPE2 declares without samples gets one
                                           series per instance with DESIGN's labels (its
                                           first documented value, else "x"), counters rising

The PromQL reader is small on purpose: it tokenises, skips strings' insides, range and subquery
brackets, function names and keywords, and reads selectors (`name{matchers}` or a bare name),
grouping label lists (by/without/on/ignoring/group_left/group_right) and Grafana's
label_values(). It refuses what it does not understand (a selector without a metric name), so
an expression it cannot read fails instead of passing unchecked.
"""

import json
import re
import sys

import yaml

# Series Prometheus makes itself for every target; not in /metrics.
SYNTHETIC = {
    "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added",
}
# Labels Prometheus attaches to every scraped series (the usual target labels).
TARGET_LABELS = {"instance", "job"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Aggregation operators: `sum by (x) (...)` puts a keyword, not "(", after the name.
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile"}
KEYWORDS = GROUPING | AGGREGATIONS | {"bool", "and", "or", "unless", "offset", "atan2", "inf", "nan", "start", "end"}
# Grafana's interval variables, replaced by a duration before parsing.
INTERVAL_VARS = re.compile(r"\$(?:__rate_interval|__interval|__range)\b|\$\{(?:__rate_interval|__interval|__range)\}")

TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<num>(?:0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[a-zA-Z0-9]*)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=,(){}\[\]])
  | (?P<var>\$\{?\w+\}?)
""", re.X)


class Unreadable(Exception):
    pass


def tokens(expr):
    out, pos = [], 0
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise Unreadable(f"cannot tokenise at {expr[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


def unquote(s):
    if s[0] == "`":
        return s[1:-1]
    if s[0] == "'":
        s = '"' + s[1:-1].replace("\\'", "'").replace('"', '\\"') + '"'
    return json.loads(s)


def parse(expr):
    """(selectors, grouping labels) of one PromQL expression; a selector is (name, [(label, op, value)])."""
    expr = INTERVAL_VARS.sub("5m", expr)
    toks = tokens(expr)
    selectors, grouping = [], set()
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if text == "[":  # range or subquery: durations only
            depth = 0
            while i < len(toks):
                depth += {"[": 1, "]": -1}.get(toks[i][1], 0)
                i += 1
                if depth == 0:
                    break
            continue
        if text == "{":
            raise Unreadable("a selector without a metric name")
        if kind == "var":
            raise Unreadable(f"Grafana variable {text} outside a label value")
        if kind != "ident":
            i += 1
            continue
        if text in GROUPING and nxt == "(":
            j = i + 2
            while toks[j][1] != ")":
                if toks[j][0] == "ident":
                    grouping.add(toks[j][1])
                elif toks[j][1] != ",":
                    raise Unreadable(f"unexpected {toks[j][1]!r} in {text}(...)")
                j += 1
            i = j + 1
            continue
        if text in KEYWORDS or nxt == "(":
            i += 1  # a keyword, a function or an aggregation
            continue
        matchers = []
        i += 1
        if nxt == "{":
            i += 1
            while toks[i][1] != "}":
                if toks[i][1] == ",":
                    i += 1
                    continue
                (lk, label), (_, op), (vk, value) = toks[i:i + 3]
                if lk != "ident" or op not in ("=", "!=", "=~", "!~") or vk != "str":
                    raise Unreadable(f"unreadable matcher near {label!r}")
                matchers.append((label, op, unquote(value)))
                i += 3
            i += 1
        selectors.append((text, matchers))
    return selectors, grouping


def dashboard_panels(panels):
    for p in panels:
        yield p
        yield from dashboard_panels(p.get("panels", []))


def expressions(rules_path, dash_path, rules=True):
    """(where, expression, extra label to check) for every PromQL expression in both files."""
    out = []
    if rules:
        with open(rules_path) as f:
            groups = yaml.safe_load(f)["groups"]
        for g in groups:
            for r in g["rules"]:
                name = r.get("alert") or r.get("record")
                out.append((f"{rules_path}: {name}", r["expr"], None))
    with open(dash_path) as f:
        dash = json.load(f)
    for p in dashboard_panels(dash["panels"]):
        for t in p.get("targets", []):
            if "expr" in t:
                out.append((f"{dash_path}: panel {p['id']} {p.get('title')!r} {t.get('refId')}", t["expr"], None))
    for a in dash.get("annotations", {}).get("list", []):
        if "expr" in a:
            out.append((f"{dash_path}: annotation {a['name']!r}", a["expr"], None))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q, re.S)
        if not m:
            out.append((f"{dash_path}: variable {v['name']}", q, None))
        else:
            out.append((f"{dash_path}: variable {v['name']}", m.group(1), m.group(2)))
    return out


def read_scrape(path):
    """{sample name: {label: set of values}} of an OpenMetrics exposition."""
    return read_exposition(path)[0]


def read_exposition(path):
    """read_scrape's samples, and {family name: type} of the families declared without samples."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    with open(path) as f:
        text = f.read()
    samples, empty = {}, {}
    for fam in text_string_to_metric_families(text):
        if not fam.samples:
            empty[fam.name] = fam.type
        for s in fam.samples:
            labels = samples.setdefault(s.name, {})
            for k, v in s.labels.items():
                labels.setdefault(k, set()).add(v)
    return samples, empty


# The sample names of a family, by its type (OpenMetrics: counters' samples end in _total).
SAMPLE_SUFFIXES = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}


def design_metrics(path):
    """{metric as docs/design.md's Metrics table names it: {label: set of documented values, or
    None where the table lists none}}. A row is `| `name` | type | labels | meaning |`; in the
    labels cell `a`, `b` = `x` \\| `y` names labels a and b, b's values x and y."""
    out = {}
    with open(path) as f:
        for line in f:
            if not line.startswith("| `sluice_"):
                continue
            cells = re.split(r"(?<!\\)\|", line)
            name, labels_cell = cells[1].strip().strip("`"), cells[3]
            labels, current, pos = {}, None, 0
            for m in re.finditer(r"`([^`]*)`", labels_cell):
                between, pos = labels_cell[pos:m.start()], m.end()
                if current is not None and ("=" in between or "\\|" in between):
                    labels[current] = (labels[current] or set()) | {m.group(1)}
                else:
                    current = m.group(1)
                    labels[current] = None
            out[name] = labels
    return out


def documented(name, empty, design):
    """(family, type, documented labels) when sample `name` belongs to a family the scrape declares
    without samples and the design documents; else None."""
    for family, ftype in empty.items():
        for suffix in SAMPLE_SUFFIXES.get(ftype, []):
            if name == family + suffix:
                doc = design.get(name, design.get(family))
                return None if doc is None else (family, ftype, doc)
    return None


def check(rules_path, dash_path, scrape_path, design_path=None, only=None):
    """Every expression's metrics, labels and literal values against the scrape. With `only`
    (metric name prefixes): just the metrics with those prefixes, each of which must have live
    samples (no design.md stand-in), and the expressions that select one."""
    samples, empty = read_exposition(scrape_path)
    design = design_metrics(design_path) if design_path else {}
    problems, used, by_design = [], {}, set()
    exprs = expressions(rules_path, dash_path)
    if only:
        picked = []
        for where, expr, extra_label in exprs:
            try:
                selected = [name for name, _ in parse(expr)[0]]
            except (Unreadable, IndexError, ValueError):
                selected = []
            if any(name.startswith(tuple(only)) for name in selected):
                picked.append((where, expr, extra_label))
        exprs = picked
        if not exprs:
            problems.append(f"no rule or panel selects a metric starting with {' or '.join(only)}")
    for where, expr, extra_label in exprs:
        try:
            selectors, grouping = parse(expr)
        except (Unreadable, IndexError, ValueError) as e:
            problems.append(f"{where}: cannot read the expression ({e}): {expr}")
            continue
        if not selectors:
            problems.append(f"{where}: selects no metric: {expr}")
        known_labels = set(TARGET_LABELS)
        for name, matchers in selectors:
            used.setdefault(name, set()).add(where)
            if name in SYNTHETIC:
                have = {}
            elif name in samples:
                have = samples[name]
            elif only:
                # Live means samples, for the checked families and anything beside them.
                problems.append(f"{where}: metric {name} has no samples in {scrape_path}")
                continue
            elif doc := documented(name, empty, design):
                # Declared by the real exposition, no samples in this one: the design's labels.
                have = doc[2]
                by_design.add(name)
            else:
                problems.append(f"{where}: metric {name} is not in /metrics")
                continue
            known_labels |= set(have)
            for label, op, value in matchers:
                if label in TARGET_LABELS:
                    continue
                if label not in have:
                    problems.append(f"{where}: {name} has no label {label!r} (it has {sorted(have) or 'none'})")
                    continue
                # Literal values (no Grafana variable): each must be one the scrape has.
                if "$" in value or have[label] is None:
                    continue
                if op in ("=", "!="):
                    wanted = [value] if value else []
                elif re.fullmatch(r"\w+(\|\w+)*", value):
                    wanted = value.split("|")
                else:
                    wanted = []
                for w in wanted:
                    if w not in have[label]:
                        problems.append(f"{where}: {name} has no {label}={w!r} (it has {sorted(have[label])})")
        for label in sorted(grouping | ({extra_label} if extra_label else set())):
            if label not in known_labels:
                problems.append(f"{where}: label {label!r} is on none of the metrics it selects: {expr}")
    for p in problems:
        print(f"FAIL: {p}")
    names = sorted(used)
    if by_design:
        print(f"declared in {scrape_path} without samples, labels from {design_path}: {' '.join(sorted(by_design))}")
    print(f"{len(exprs)} expressions, {len(names)} metrics: {' '.join(names)}")
    return 1 if problems else 0


def check_dashboard(path):
    problems = []
    with open(path) as f:
        try:
            d = json.load(f)
        except json.JSONDecodeError as e:
            print(f"FAIL: {path} is not JSON: {e}")
            return 1
    for key in ("title", "uid", "panels", "templating", "schemaVersion"):
        if key not in d:
            problems.append(f"no top-level {key!r}")
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
        problems.append(f"schemaVersion {d.get('schemaVersion')!r}: want a Grafana 9+ schema (>= 36)")
    panels = list(dashboard_panels(d.get("panels", [])))
    ids = [p.get("id") for p in panels]
    dups = sorted({i for i in ids if ids.count(i) > 1 or i is None}, key=str)
    if dups:
        problems.append(f"panel ids not unique or missing: {dups}")
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    ds = variables.get("datasource", {})
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("no `datasource` variable of type datasource querying prometheus")
    for name in ("instance",):
        v = variables.get(name, {})
        if v.get("type") != "query" or v.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"no `{name}` query variable on ${{datasource}}")
    boxes = []
    for p in panels:
        what = f"panel {p.get('id')} {p.get('title')!r}"
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "xywh") or g["x"] + g["w"] > 24:
            problems.append(f"{what}: bad gridPos {g}")
            continue
        boxes.append((what, g))
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"{what}: datasource is not ${{datasource}}")
        targets = p.get("targets", [])
        refs = [t.get("refId") for t in targets]
        if not targets or len(set(refs)) != len(refs) or None in refs:
            problems.append(f"{what}: no targets, or refIds missing or repeated: {refs}")
        for t in targets:
            if not t.get("expr"):
                problems.append(f"{what}: target {t.get('refId')} has no expr")
    for i, (wa, a) in enumerate(boxes):
        for wb, b in boxes[i + 1:]:
            if a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]:
                problems.append(f"{wa} overlaps {wb}")
    for p in problems:
        print(f"FAIL: {path}: {p}")
    if not problems:
        print(f"{path}: {len(panels)} panels, ids unique, variables {sorted(variables)}")
    return 1 if problems else 0


def promtool_dir(rules_path, dash_path, out):
    with open(rules_path) as f:
        rules = yaml.safe_load(f)
    for g in rules["groups"]:
        for r in g["rules"]:
            r.pop("annotations", None)
    with open(f"{out}/sluice.rules.yml", "w") as f:
        yaml.safe_dump(rules, f, sort_keys=False)
    recorded = []
    for n, (where, expr, _) in enumerate(expressions(rules_path, dash_path, rules=False)):
        recorded.append({"record": f"dashboard:expr_{n}", "expr": dashboard_rule_expr(expr),
                         "labels": {"from": where}})
    with open(f"{out}/dashboard.rules.yml", "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}, f, sort_keys=False)
    print(f"{out}: sluice.rules.yml without annotations, dashboard.rules.yml with {len(recorded)} expressions")
    return 0


def dashboard_rule_expr(expr):
    """A dashboard expression with Grafana's variables replaced, for promtool."""
    expr = INTERVAL_VARS.sub("5m", expr)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)  # $instance, $service: a regex in =~ matchers


def series_text(name, labels):
    return name + "{" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())) + "}"


def scrape_values(path):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    with open(path) as f:
        text = f.read()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def eval_dir(dash_path, scrape1, scrape2, out, design_path=None):
    first, second = scrape_values(scrape1), scrape_values(scrape2)
    stand_ins = []
    if design_path:
        design = design_metrics(design_path)
        for family, ftype in sorted(read_exposition(scrape2)[1].items()):
            if ftype not in ("counter", "gauge"):
                continue  # a histogram's buckets are not worth making up
            name = family + SAMPLE_SUFFIXES[ftype][0]
            doc = documented(name, {family: ftype}, design)
            if doc:
                labels = {k: sorted(v)[0] if v else "x" for k, v in doc[2].items()}
                # A counter rising by one a second, so rates are not 0.
                stand_ins.append((name, labels, "0 60" if ftype == "counter" else "1 1"))
    series = []
    for instance in ("a:9610", "b:9610"):
        target = {"job": "sluice", "instance": instance}
        series.append({"series": series_text("up", target), "values": "1 1"})
        for (name, labels), v in sorted(second.items()):
            v1 = first.get((name, labels))
            values = f"{'_' if v1 is None else repr(float(v1))} {float(v)!r}"
            series.append({"series": series_text(name, dict(labels, **target)), "values": values})
        for name, labels, values in stand_ins:
            series.append({"series": series_text(name, dict(labels, **target)), "values": values})
    rules, tests = [], []
    for n, (where, expr, _) in enumerate(expressions("/dev/null", dash_path, rules=False)):
        if re.search(r"(==|!=|>=|<=|>|<)\s*[-+]?[\d.]+\s*$", expr) and not re.search(r"\bbool\s*[-+]?[\d.]+\s*$", expr):
            continue  # a filter: empty when all is well
        record = f"dashboard:expr_{n}"
        alert = f"DashboardExprEmpty{n}"
        rules.append({"record": record, "expr": dashboard_rule_expr(expr)})
        rules.append({"alert": alert, "expr": f"absent({record})", "labels": {"from": where}})
        tests.append({"eval_time": "1m", "alertname": alert, "exp_alerts": []})
    with open(f"{out}/eval.rules.yml", "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, sort_keys=False)
    with open(f"{out}/eval.test.yml", "w") as f:
        yaml.safe_dump({"rule_files": ["eval.rules.yml"], "evaluation_interval": "1m",
                        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": tests}]},
                       f, sort_keys=False)
    made = f" ({len(stand_ins)} per instance from {design_path}: {' '.join(n for n, _, _ in stand_ins)})" if stand_ins else ""
    print(f"{out}: {len(tests)} dashboard expressions to evaluate over {len(series)} input series{made}")
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "list":
        for where, expr, _ in expressions(argv[2], argv[3]):
            print(f"{where}\n    {' '.join(expr.split())}")
        return 0
    if len(argv) in (5, 6) and argv[1] == "check":
        return check(*argv[2:])
    if len(argv) >= 6 and argv[1] == "check-live":
        return check(argv[2], argv[3], argv[4], only=argv[5:])
    if len(argv) == 3 and argv[1] == "dashboard":
        return check_dashboard(argv[2])
    if len(argv) in (6, 7) and argv[1] == "eval-dir":
        return eval_dir(*argv[2:])
    if len(argv) == 5 and argv[1] == "promtool-dir":
        return promtool_dir(argv[2], argv[3], argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
