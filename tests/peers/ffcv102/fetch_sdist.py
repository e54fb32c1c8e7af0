"""Download FFCV 1.0.2's source distribution from the package index and unpack it.

    python fetch_sdist.py DEST        # -> DEST/ffcv-1.0.2/ (its source, docs, tests, examples)

The sdist is found on the index's simple page (PIP_INDEX_URL, else https://pypi.org/simple)
and checked against the sha256 the page gives. Only the archive is fetched: nothing of it
is built or installed (its build needs system libraries). Prints the folder.
"""
import hashlib
import os
import re
import sys
import tarfile
import urllib.parse
import urllib.request

NAME, VERSION = 'ffcv', '1.0.2'


def sdist_link(index):
    page_url = f"{index.rstrip('/')}/{NAME}/"
    with urllib.request.urlopen(page_url, timeout=60) as response:
        page = response.read().decode('utf-8')
    for href in re.findall(r'href="([^"]+)"', page):
        url, _, fragment = href.partition('#')
        if url.split('/')[-1] == f'{NAME}-{VERSION}.tar.gz':
            digest = dict(part.split('=', 1) for part in fragment.split('&') if '=' in part).get('sha256')
            return urllib.parse.urljoin(page_url, url), digest
    raise SystemExit(f"{NAME}-{VERSION}.tar.gz is not on {page_url}")


def main(dest):
    os.makedirs(dest, exist_ok=True)
    folder = os.path.join(dest, f'{NAME}-{VERSION}')
    if os.path.isdir(os.path.join(folder, 'tests')):
        print(folder)
        return
    url, digest = sdist_link(os.environ.get('PIP_INDEX_URL', 'https://pypi.org/simple'))
    archive = os.path.join(dest, f'{NAME}-{VERSION}.tar.gz')
    with urllib.request.urlopen(url, timeout=300) as response, open(archive, 'wb') as out:
        data = response.read()
        out.write(data)
    if digest and hashlib.sha256(data).hexdigest() != digest:
        raise SystemExit(f"{archive}: sha256 differs from the index's ({digest})")
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter='data')
    print(folder)


if __name__ == '__main__':
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
