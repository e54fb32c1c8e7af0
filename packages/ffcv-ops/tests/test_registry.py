"""Operations by name: the ``ffcv.ops`` entry points, read through importlib.metadata.

Plugins here are real distributions: ``NAME-VERSION.dist-info`` folders (METADATA and
entry_points.txt) and their modules on a temporary ``sys.path`` entry, found by the same
discovery that finds installed packages.
"""
import inspect
import sys
import textwrap

import ffcv_ops
import pytest
from ffcv_ops import Operation
from ffcv_ops.registry import (
    DuplicateOpError,
    OpRegistryError,
    UnknownOpError,
    available_ops,
    op_entries,
    refresh_ops,
    resolve_op,
)

OP_MODULE = '''
from ffcv_ops import Operation


class {name}(Operation):
    def generate_code(self):
        return lambda images, destination: images

    def declare_state_and_memory(self, previous_state):
        return previous_state, None
'''


def make_distribution(site, name, ops, modules=None):
    """A distribution ``name`` in folder ``site``: its dist-info with ``ops`` (entry-point name
    -> target) in the group ``ffcv.ops``, and ``modules`` (module name -> source)."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / 'METADATA').write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = ''.join(f"{op} = {target}\n" for op, target in ops.items())
    (info / 'entry_points.txt').write_text(f"[ffcv.ops]\n{lines}")
    for module, source in (modules or {}).items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path, monkeypatch):
    """An empty folder on sys.path for fake distributions; the registry reads the entry points
    again before and after the test."""
    folder = tmp_path / 'site'
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    refresh_ops()
    yield folder
    monkeypatch.undo()
    for module in [m for m in sys.modules if m.startswith('fake_')]:
        del sys.modules[module]
    refresh_ops()


def test_every_public_operation_has_an_entry_point():
    assert any(entry.builtin for entry in op_entries()), (
        "ffcv-ops' installed metadata has no ffcv.ops entry points: an editable install made before "
        "they were declared; reinstall it (pip install --no-deps -e packages/ffcv-ops; hatch: hatch env prune)")
    ops = available_ops()
    public = {name: getattr(ffcv_ops, name) for name in ffcv_ops.__all__}
    operations = {name: value for name, value in public.items()
                  if isinstance(value, type) and issubclass(value, Operation) and not inspect.isabstract(value)}
    assert len(operations) >= 28
    missing = sorted(set(operations) - set(ops))
    assert not missing, f"add these to [project.entry-points.\"ffcv.ops\"] of packages/ffcv-ops/pyproject.toml: {missing}"
    for name, cls in operations.items():
        assert resolve_op(name) is cls, (name, ops[name])
    # and no entry point of ffcv-ops names what is not an operation of its own
    for entry in op_entries():
        if entry.builtin:
            assert issubclass(resolve_op(entry.name), Operation) and entry.target.startswith('ffcv_ops.')


def test_builtins_come_first_and_names_are_targets():
    entries = op_entries()
    builtin = [e.builtin for e in entries]
    assert builtin == sorted(builtin, reverse=True)
    assert {e.distribution for e in entries if e.builtin} == {'ffcv-ops'}
    assert available_ops()['RandomHorizontalFlip'] == 'ffcv_ops.transforms.augment:RandomHorizontalFlip'


def test_unknown_names_list_close_matches_and_where_names_come_from():
    with pytest.raises(UnknownOpError) as error:
        resolve_op('RandomHorizontallFlip')
    message = str(error.value)
    assert message.startswith("unknown operation 'RandomHorizontallFlip': did you mean RandomHorizontalFlip")
    assert "'ffcv.ops' entry points" in message and 'ffcv-ops' in message
    with pytest.raises(UnknownOpError, match="unknown operation 'Zzz': \\(operations are"):
        resolve_op('Zzz')
    with pytest.raises(UnknownOpError, match='an operation name is a string, got 3'):
        resolve_op(3)
    assert isinstance(error.value, ValueError)


def test_a_plugin_is_found_and_imported_only_when_asked_for(site):
    make_distribution(site, 'fake-plugin', {'Sharpen': 'fake_sharpen:Sharpen'},
                      {'fake_sharpen': OP_MODULE.format(name='Sharpen')})
    assert available_ops()['Sharpen'] == 'fake_sharpen:Sharpen'
    assert list(available_ops()).index('Sharpen') > list(available_ops()).index('IntDecoder')
    assert 'fake_sharpen' not in sys.modules
    cls = resolve_op('Sharpen')
    assert cls.__name__ == 'Sharpen' and sys.modules['fake_sharpen'].Sharpen is cls
    assert issubclass(cls, Operation) and resolve_op('Sharpen') is cls


def test_the_entry_points_are_read_once(site):
    available_ops()
    make_distribution(site, 'fake-late', {'Late': 'fake_late:Late'}, {'fake_late': OP_MODULE.format(name='Late')})
    with pytest.raises(UnknownOpError, match="needs ffcv_ops.registry.refresh_ops"):
        resolve_op('Late')
    refresh_ops()
    assert resolve_op('Late').__name__ == 'Late'


def test_two_distributions_offering_one_name_is_an_error_naming_both(site):
    make_distribution(site, 'fake-first', {'Blur': 'fake_first:Blur'}, {'fake_first': OP_MODULE.format(name='Blur')})
    make_distribution(site, 'fake-second', {'Blur': 'fake_second.ops:SoftBlur'})
    for attempt in (lambda: resolve_op('Blur'), available_ops):
        with pytest.raises(DuplicateOpError) as error:
            attempt()
        message = str(error.value)
        assert "operation 'Blur' is offered by 2 distributions" in message
        assert 'fake-first (fake_first:Blur)' in message and 'fake-second (fake_second.ops:SoftBlur)' in message
    assert 'fake_first' not in sys.modules      # nothing imported to find the conflict
    assert resolve_op('IntDecoder').__name__ == 'IntDecoder'   # other names still resolve


def test_a_plugin_may_not_take_a_builtin_name(site):
    make_distribution(site, 'fake-shadow', {'RandomHorizontalFlip': 'fake_shadow:RandomHorizontalFlip'})
    with pytest.raises(DuplicateOpError, match=r"ffcv-ops \(ffcv_ops.transforms.augment:RandomHorizontalFlip\); "
                                               r"fake-shadow \(fake_shadow:RandomHorizontalFlip\)"):
        resolve_op('RandomHorizontalFlip')


def test_broken_targets_name_the_distribution(site):
    make_distribution(site, 'fake-broken', {'Missing': 'fake_nowhere:Missing', 'NotAnOp': 'fake_plain:thing',
                                            'NoColon': 'fake_plain'},
                      {'fake_plain': 'thing = 3\n'})
    with pytest.raises(OpRegistryError, match=r"operation 'Missing' \(fake_nowhere:Missing, from fake-broken\): "
                                              r"cannot import 'fake_nowhere'"):
        resolve_op('Missing')
    with pytest.raises(OpRegistryError, match="thing is 3, not a subclass of ffcv_ops.Operation"):
        resolve_op('NotAnOp')
    with pytest.raises(OpRegistryError, match="must be 'module:Class'"):
        resolve_op('NoColon')
