"""One line per test file of a pytest JUnit report, then the totals.

    python summarize_suite.py REPORT.xml TARGET [NOT_RUN_TEST ...]

NOT_RUN_TEST: tests (``file.py`` or ``file.py::name``) left out because they need a GPU;
they are listed as such.
"""
import collections
import sys
import xml.etree.ElementTree as ET


def main(report, target, not_run):
    counts = collections.defaultdict(collections.Counter)
    for case in ET.parse(report).getroot().iter('testcase'):
        module = case.get('classname', '').split('.')[-1] or case.get('file', '?')
        outcome = 'passed'
        for child in case:
            if child.tag in ('failure', 'error'):
                outcome = 'failed'
            elif child.tag == 'skipped':
                outcome = 'skipped'
        counts[f'{module}.py'][outcome] += 1
    for test in not_run:
        counts[test.split('::')[0]]['not run (needs a GPU)'] += 1
    print(f"FFCV 1.0.2's test suite against {target}:")
    total = collections.Counter()
    for module in sorted(counts):
        total.update(counts[module])
        parts = ', '.join(f'{n} {what}' for what, n in sorted(counts[module].items()))
        print(f"  {module:34s} {parts}")
    print(f"  {'total':34s} " + ', '.join(f'{n} {what}' for what, n in sorted(total.items())))


if __name__ == '__main__':
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
