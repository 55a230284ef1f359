"""The wire schema is written once (include/foxml/events/schema_keys.hpp, schema.hpp): the library's
view of it matches DESIGN.md's copy (event_schema.py) and the stub's signatures, and no other C++
source spells a per-type wire key out as a string literal."""

import ast
import re
from pathlib import Path

import event_schema
import foxml_events as fe
from foxml_events import _core

ROOT = Path(__file__).resolve().parents[2]
KEYS_HEADER = ROOT / "include/foxml/events/schema_keys.hpp"
SCHEMA_HEADERS = {"include/foxml/events/schema_keys.hpp", "include/foxml/events/schema.hpp"}

# The event types' names are listed in event.hpp (`to_string(event_type)`).
EVENT_TYPES_HEADER = "include/foxml/events/event.hpp"
EVENT_TYPES = set(event_schema.FIELDS)
# Reprs of classes that are not events: DeliveryReport's `status` is the delivery's, not a key.
NOT_EVENT_REPRS = ("DeliveryReport(",)

# event_schema.py's names for the kinds.
KIND = {"string": event_schema.STRING, "number": event_schema.NUMBER, "integer": event_schema.INTEGER,
        "boolean": event_schema.BOOLEAN, "metric_map": event_schema.METRICS, "json_object": event_schema.OBJECT,
        "string_list": event_schema.STRINGS, "gpu_list": event_schema.ARRAY}


def x_macro_rows(name):
    text = KEYS_HEADER.read_text()
    block = re.search(r"#define " + name + r"\(X\)((?:[^\n]*\\\n)*[^\n]*)", text).group(1)
    return re.findall(r"X\((\w+),", block)


def wire_names():
    """Every per-type key and GPU member name."""
    return set(x_macro_rows("FOXML_EVENTS_WIRE_KEYS")) | set(x_macro_rows("FOXML_EVENTS_GPU_KEYS"))


def test_library_schema_matches_the_design():
    schema = _core._schema()
    assert set(schema) == set(event_schema.FIELDS)
    for event_type, fields in schema.items():
        expected = event_schema.FIELDS[event_type]
        assert [key for key, *_ in fields] == list(expected), f"{event_type}: keys or their order"
        for key, kind, nullable, optional in fields:
            assert (KIND[kind], nullable, optional) == expected[key], f"{event_type}.{key}"


def test_key_table_is_what_the_types_use():
    used = {key for fields in _core._schema().values() for key, *_ in fields}
    assert set(x_macro_rows("FOXML_EVENTS_WIRE_KEYS")) == used


def stub_parameters():
    """Parameter names (without self) of the stub's functions: {"EmitterBase.emit_error": [...], ...}."""
    tree = ast.parse((Path(fe.__file__).parent / "_core.pyi").read_text())
    out = {}
    for node in tree.body:
        scope = [(node.name + ".", n) for n in node.body] if isinstance(node, ast.ClassDef) else [("", node)]
        for prefix, fn in scope:
            if isinstance(fn, ast.FunctionDef):
                args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
                out[prefix + fn.name] = [a.arg for a in args if a.arg != "self"]
    return out


def test_stub_emit_calls_take_their_types_fields():
    schema = {t: [key for key, *_ in fields] for t, fields in _core._schema().items()}
    stub = stub_parameters()
    in_wire_order = {
        "emit_progress": "progress", "EmitterBase.emit_progress": "progress",
        "EmitterBase.emit_stage_change": "stage_change", "EmitterBase.emit_target_complete": "target_complete",
        "EmitterBase.emit_run_complete": "run_complete", "EmitterBase.emit_error": "error",
        "EmitterBase.log": "log", "EmitterBase.emit_log": "log",
    }
    for function, event_type in in_wire_order.items():
        assert stub[function] == schema[event_type], function
    # log_metrics takes the metrics first; _emit_run_start (under emit_run_start) its config first,
    # as JSON text.
    for function in ["log_metrics", "EmitterBase.log_metrics"]:
        assert sorted(stub[function]) == sorted(schema["metrics"]), function
    renamed = {"config_json": "config"}
    assert sorted(renamed.get(p, p) for p in stub["EmitterBase._emit_run_start"]) == sorted(schema["run_start"])


def test_compiled_emit_progress_signature_is_the_schema():
    progress = [key for key, *_ in _core._schema()["progress"]]
    for function in [_core.emit_progress, _core.EmitterBase.emit_progress]:
        # The first line of the docstring is the signature help() shows.
        listed = re.match(r"emit_progress\((.*)\) -> bool\n", function.__doc__).group(1)
        assert [p.split("=")[0] for p in listed.split(", ")] == progress


# --- The literal check -------------------------------------------------------------------------


def string_literals(source):
    """(line, text) of every string literal of a C++ source, comments skipped, raw strings included."""
    out, i, line, n = [], 0, 1, len(source)
    while i < n:
        c = source[i]
        if c == "\n":
            line += 1
        if source.startswith("//", i):
            i = source.find("\n", i)
            i = n if i < 0 else i
            continue
        if source.startswith("/*", i):
            end = source.find("*/", i + 2)
            line += source.count("\n", i, end)
            i = end + 2
            continue
        raw = re.match(r'R"([^(\s]*)\(', source[i:i + 20]) if c == "R" and not source[i - 1:i].isalnum() else None
        if raw:
            close = ")" + raw.group(1) + '"'
            end = source.find(close, i + raw.end())
            out.append((line, source[i + raw.end():end]))
            line += source.count("\n", i, end)
            i = end + len(close)
            continue
        if c == "'" and source[i - 1:i].isdigit() and source[i + 1:i + 2].isalnum():
            i += 1  # a digit separator: 1'000
            continue
        if c == "'":  # a character literal, which may be '"'
            i = source.index("'", i + 3 if source[i + 1] == "\\" else i + 2) + 1
            continue
        if c == '"':
            j = i + 1
            while source[j] != '"':
                j += 2 if source[j] == "\\" else 1
            out.append((line, source[i + 1:j]))
            i = j + 1
            continue
        i += 1
    return out


def spells_out(literal, key):
    """Whether a literal uses `key` as a key: the whole literal, a JSON key ("key":), a label
    (key=...) or, for a key with an underscore (no English word), any mention."""
    if literal == key or f'\\"{key}\\"' in literal:
        return True
    word = r"(?<![\w.])" + re.escape(key) + r"(?!\w)"
    if "_" in key:
        return re.search(word, literal) is not None and not is_prose(literal)
    return re.search(word + "=", literal) is not None


def is_prose(literal):
    # A docstring sentence mentions a parameter by name; it cannot put a value under a wrong key.
    return len(literal.split()) >= 4 and not re.search(r'[{}=:"]', literal.replace("{}", ""))


def is_text_signature(literal):
    return re.match(r"^\w+\(.*\) -> \w+", literal) is not None


def test_wire_names_appear_as_literals_only_in_the_schema():
    keys = wire_names()
    found = []
    for folder in ["src", "include", "bindings", "cli"]:
        for path in sorted((ROOT / folder).rglob("*")):
            rel = path.relative_to(ROOT).as_posix()
            if path.suffix not in {".cpp", ".hpp", ".h"} or rel in SCHEMA_HEADERS:
                continue
            # Python keyword-argument, attribute and method declarations name what Python users type.
            source = re.sub(r'(py::arg|def_property_readonly|def_readonly|\.def)\(\s*"\w+"', r"\1(", path.read_text())
            # Default values of Python arguments and the readers' `errors=` option values ("raise",
            # "skip", "count") are not keys.
            source = re.sub(r'(errors\s*(?:==|!=)\s*|py::arg\(\)\s*=\s*)"\w+"', r"\1", source)
            for line, literal in string_literals(source):
                if is_text_signature(literal) or literal.startswith(NOT_EVENT_REPRS):
                    continue
                if rel == EVENT_TYPES_HEADER and literal in EVENT_TYPES:
                    continue  # the event type names (the type `metrics` shares its name with a key)
                hits = sorted(key for key in keys if spells_out(literal, key))
                if hits:
                    found.append(f"{rel}:{line}: {literal!r} spells out {hits}")
    assert found == [], "use schema::names / wire_key instead:\n" + "\n".join(found)


def test_the_literal_check_catches_what_it_is_for():
    src = 'd["best_auc"] = x; out.literal(",\\"targets_complete\\":"); add("step=" + s); f("{}", "error_type");'
    literals = [text for _, text in string_literals(src)]
    assert [sorted(k for k in wire_names() if spells_out(t, k)) for t in literals] == [
        ["best_auc"], ["targets_complete"], ["step"], [], ["error_type"]]
    # ...and leaves prose, comments and other words alone.
    src = '// "best_auc"\nraise("a metric name", "Reports a move from previous_stage (None at the start) to x.");'
    assert all(not any(spells_out(t, k) for k in wire_names()) for _, t in string_literals(src))
