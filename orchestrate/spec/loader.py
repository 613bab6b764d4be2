"""Load a pipeline definition: YAML → schema → semantic checks → PipelineSpec.

Every problem found on the way is collected and raised together as one SpecError
(file:line:col: field.path: message, with hints); any user input, however broken,
ends in a SpecError and never in a traceback. The stages, in order:

1. marks.parse_yaml      syntax, duplicate keys, odd tags; records line:col of everything
2. schema_errors         schema.json (also published for editors), reworded
3. semantics / order     names that must exist, one kind of work, order and cycles, ${...}
4. build                 the frozen model, durations in seconds, defaults resolved
"""

from __future__ import annotations

from pathlib import Path

from orchestrate.domain.errors import SpecError, SpecIssue
from orchestrate.spec.model import PipelineSpec


def load_pipeline(path: str | Path, *, display_path: str | None = None) -> PipelineSpec:
    """Read and validate the pipeline at ``path``; issues name ``display_path`` if given."""
    file = display_path if display_path is not None else str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        hint = "check the path; pipelines live in pipelines.d/ (orchestrate pipeline list shows them)"
        raise SpecError([SpecIssue(file, None, None, "", "no such file", hint=hint)]) from None
    except IsADirectoryError:
        raise SpecError([SpecIssue(file, None, None, "", "is a directory, not a pipeline file")]) from None
    except OSError as exc:
        raise SpecError([SpecIssue(file, None, None, "", f"cannot read: {exc.strerror}")]) from None
    try:
        # Decoded without newline translation: `text` is stored and hashed exactly as written.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        issue = SpecIssue(file, None, None, "", f"not UTF-8 text (bad byte at offset {exc.start})")
        raise SpecError([issue]) from None
    return load_pipeline_text(text, file)


def load_pipeline_text(text: str, path: str) -> PipelineSpec:
    """Validate ``text`` (read from ``path``, used in messages) into a PipelineSpec."""
    from orchestrate.spec.build import build_pipeline
    from orchestrate.spec.marks import parse_yaml
    from orchestrate.spec.schema_errors import describe, schema_issues
    from orchestrate.spec.semantics import check

    doc = parse_yaml(text, path)
    if doc.data is None and not doc.issues:
        doc.issues.append(
            SpecIssue(path, 1, 1, "", "the file is empty", "a pipeline needs at least name: and stages:")
        )
    elif doc.data is not None and not isinstance(doc.data, dict):
        doc.add(
            (),
            f"expected a mapping at the top level, got {describe(doc.data)}",
            "start with name: and stages:",
        )
    elif isinstance(doc.data, dict):
        clean_yaml = not doc.issues
        doc.issues.extend(schema_issues(doc))
        # Semantic checks trust the schema's shapes and unambiguous YAML, so they wait for both.
        if clean_yaml and not doc.issues:
            needs = check(doc.data, doc)
            if not doc.issues and needs is not None:
                return build_pipeline(doc, needs, text)
    raise SpecError(doc.issues)
