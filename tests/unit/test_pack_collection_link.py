"""The packed check suite keeps the collection link: on the admin host the checks template
role variables with tomwerk.toms.* filters, found through ansible.cfg's collections_path."""

from __future__ import annotations

import tarfile

from tomwerk import pack


def test_the_tarball_links_the_tree_as_the_collection(tmp_path):
    out = pack.pack(tmp_path / "src.tar")
    with tarfile.open(out) as tar:
        link = tar.getmember(pack.COLLECTION_LINK)
    assert link.issym() and link.linkname == "../../.."
