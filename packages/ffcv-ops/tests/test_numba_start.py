"""``initialize_numba``: numba made ready once per process without importing scipy.linalg,
and numba behaving as it does without it. Each test runs in a fresh process (what numba
has set up is process-wide)."""
import json
import subprocess
import sys
import textwrap

import pytest


def run_fresh(code):
    """Run ``code`` in a fresh interpreter; returns the JSON it prints last."""
    done = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_initialize_numba_skips_scipy_and_keeps_the_garbage_collector_as_it_was():
    result = run_fresh("""
        import gc, json, sys
        scipy_before = 'scipy.linalg' in sys.modules
        from ffcv_ops.compiler import initialize_numba
        gc.disable()
        initialize_numba()
        stays_disabled = not gc.isenabled()
        gc.enable()
        initialize_numba()     # the second call does nothing
        from numba.core.registry import cpu_target
        print(json.dumps(dict(scipy_before=scipy_before, scipy_after='scipy.linalg' in sys.modules,
                              stays_disabled=stays_disabled, enabled=gc.isenabled(),
                              arraymath='numba.np.arraymath' in sys.modules)))
    """)
    assert result['arraymath']          # numba's implementations are loaded
    if not result['scipy_before']:
        assert not result['scipy_after']
    assert result['stays_disabled'] and result['enabled']


def test_numba_decides_blas_as_it_would_when_it_needs_to():
    """np.correlate/np.convolve (the only readers of numba's deferred BLAS check) and, where
    scipy is installed, BLAS functions compile and agree with numpy; the check gives numba's
    own answer, with scipy (an environment with everything) or without (the package's own)."""
    result = run_fresh("""
        import json, sys
        import numpy as np
        from numba import njit
        scipy_before = 'scipy.linalg' in sys.modules
        from ffcv_ops.compiler import initialize_numba
        initialize_numba()
        from numba.np import arraymath, linalg
        deferred = type(arraymath._HAVE_BLAS).__name__
        a = np.linspace(0, 1, 50)
        b = np.linspace(1, 3, 7)
        ok = {}
        ok['correlate'] = np.allclose(njit(lambda x, y: np.correlate(x, y))(a, b), np.correlate(a, b))
        ok['convolve'] = np.allclose(njit(lambda x, y: np.convolve(x, y))(a, b), np.convolve(a, b))
        try:
            linalg.ensure_blas()
            numba_would = True
        except ImportError:
            numba_would = False      # no scipy here: numba's np.dot needs it, with or without us
        if numba_would:
            ok['dot'] = np.allclose(njit(lambda x, y: np.dot(x, y))(a[:7], b), np.dot(a[:7], b))
        print(json.dumps(dict(ok=ok, deferred=deferred, have_blas=bool(arraymath._HAVE_BLAS),
                              numba_would=numba_would, scipy_before=scipy_before)))
    """)
    assert all(result['ok'].values()), result['ok']
    assert result['have_blas'] == result['numba_would']
    assert result['deferred'] == ('bool' if result['scipy_before'] else '_DeferredBlasCheck')


def test_numba_already_set_up_is_left_alone():
    result = run_fresh("""
        import json
        from numba.core.registry import cpu_target
        cpu_target.target_context.refresh()       # numba's own start-up, scipy included
        from ffcv_ops.compiler import initialize_numba
        initialize_numba()
        from numba.np import arraymath, linalg
        print(json.dumps(dict(kind=type(arraymath._HAVE_BLAS).__name__,
                              same_check=arraymath.ensure_blas is linalg.ensure_blas)))
    """)
    assert result == {'kind': 'bool', 'same_check': True}


@pytest.mark.parametrize('threads', [4])
def test_initialize_numba_from_several_threads_at_once(threads):
    result = run_fresh(f"""
        import json, threading
        import numpy as np
        from ffcv_ops.compiler import initialize_numba
        from ffcv_ops.kernels.random import sample_key
        from numba import njit
        errors = []
        def go():
            try:
                initialize_numba()
            except Exception as e:
                errors.append(repr(e))
        ts = [threading.Thread(target=go) for _ in range({threads})]
        for t in ts: t.start()
        for t in ts: t.join()
        value = int(njit(lambda s, i: sample_key(s, i))(np.uint64(3), np.int64(5)))
        print(json.dumps(dict(errors=errors, value=value)))
    """)
    assert result['errors'] == []
    from ffcv_ops.kernels.random import sample_key_py
    assert result['value'] == sample_key_py(3, 5)
