"""numpydoc validation of the public API (skglm's ``test_docstring_parameters.py`` pattern).

Every public function, class and method (``__all__`` of the modules in :data:`MODULES`)
must have a numpydoc docstring whose Parameters match the signature, each with a type and
a description, and a Returns section that describes what comes back.  Codes about style
that mathematical notation breaks (a summary or description starting with ``x*`` or ``λ``)
and the optional sections (See Also, Examples, extended summary) are not enforced.

The scope grows module by module: add a module to :data:`MODULES` once it passes.
"""

import importlib
import inspect

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

#: Modules whose public API is validated.
MODULES = [
    "mast_cli.io.errors",
    "mast_cli.io.outputs",
    "mast_cli.core.penalties",
    "mast_cli.core.evaluation",
    "mast_cli.solvers.pool",
    "mast_cli.reference",
    "mast_cli.shifts",
]

#: numpydoc error codes that are enforced.
CHECKED = {
    "GL02", "GL03", "GL06", "GL07", "GL08",         # layout, no docstring
    "SS01", "SS03", "SS06",                         # a one-line summary ending with a period
    "PR01", "PR02", "PR06", "PR07", "PR09",         # parameters: all, no others, described
    "RT01", "RT02", "RT03", "RT05",                 # returns: present and described
    "YD01",
}


def public_objects():
    out = []
    for name in MODULES:
        mod = importlib.import_module(name)
        for attr in getattr(mod, "__all__", []):
            obj = getattr(mod, attr)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or obj.__module__ != name:
                continue
            out.append(f"{name}.{obj.__qualname__}")
            if inspect.isclass(obj):
                for key, val in vars(obj).items():
                    if key.startswith("_"):
                        continue
                    fn = val.fget if isinstance(val, property) else val
                    if inspect.isfunction(fn):
                        out.append(f"{name}.{fn.__qualname__}")
    return out


OBJECTS = public_objects()


def test_scope_is_not_empty():
    assert len(OBJECTS) >= 25


@pytest.mark.parametrize("name", OBJECTS)
def test_docstring(name):
    errors = [f"{code} {msg}" for code, msg in numpydoc_validate.validate(name)["errors"] if code in CHECKED]
    assert not errors, f"{name}:\n" + "\n".join(errors)
