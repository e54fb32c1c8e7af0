"""The device check (benchmarks/device/check.py) runs here too: the parts that need CUDA say
so, the CPU parts measure, and both result files are written."""
import json
import subprocess
import sys
from pathlib import Path

import torch

REPOSITORY = Path(__file__).resolve().parent.parent


def test_device_check_quick_run_writes_its_tables(tmp_path):
    script = REPOSITORY / 'benchmarks' / 'device' / 'check.py'
    done = subprocess.run([sys.executable, str(script), '--quick', '--skip-tests', '--out', str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / 'device.json').read_text())
    rates = results['scaling']['images_s']
    assert list(rates) == ['1', '2'] and all(rate > 0 for rate in rates.values())
    assert results['scaling']['speedup']['1'] == 1.0
    table = (tmp_path / 'device.md').read_text()
    assert '| threads | images/s | speed-up |' in table
    if not torch.cuda.is_available():
        assert results['cuda_prefetch'] == {'not_run': 'no CUDA device'}
        assert results['cifar_recipe'] == {'not_run': 'no CUDA device'}
        assert 'CUDA prefetch: not run (no CUDA device)' in table
    else:
        assert results['cuda_prefetch']['batch_devices'] == ['cuda:0']
        assert results['cifar_recipe']['epoch_seconds'] > 0
