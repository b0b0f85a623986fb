"""The index is a view: saved atomically, stamped, caught up, rebuilt when anything is off."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import loomdb

from ..conftest import unit_vectors


def open_filled(path: Path, n: int = 300) -> tuple[loomdb.Database, np.ndarray]:
    db = loomdb.open(path)
    x = unit_vectors(n, 8)
    db.create_space("text", 8)
    db.add_nodes([{"id": f"n{i}"} for i in range(n)], vectors=x)
    return db, x


def index_dir(path: Path) -> Path:
    return path / "index" / "text" / "default"


def test_close_saves_a_stamped_generation(tmp_path: Path) -> None:
    db, x = open_filled(tmp_path / "s")
    db.vector_search(x[0], k=1)
    seq = db.seq
    db.close()
    current = (index_dir(tmp_path / "s") / "CURRENT").read_text()
    assert f'"seq": {seq}' in current
    assert len(list(index_dir(tmp_path / "s").glob("gen-*.faiss"))) == 1
    assert not list(index_dir(tmp_path / "s").glob(".*tmp"))


def test_reopen_loads_and_catches_up_from_the_log(tmp_path: Path) -> None:
    db, x = open_filled(tmp_path / "s")
    db.vector_search(x[0], k=1)
    db.checkpoint()
    db.add_node("late", vector=x[5] * -1)  # after the stamp: only in the log
    db.delete_node("n5")
    db.backend.close()  # simulate a crash: no index save on the way out
    with loomdb.open(tmp_path / "s") as again:
        assert again.vector_search(-x[5], k=1)[0].id == "late"
        assert "n5" not in {h.id for h in again.vector_search(x[5], k=5)}
        assert again.check() == []


def test_corrupt_or_missing_index_is_rebuilt(tmp_path: Path) -> None:
    db, x = open_filled(tmp_path / "s")
    db.close()
    directory = index_dir(tmp_path / "s")
    for faiss_file in directory.glob("gen-*.faiss"):
        faiss_file.write_bytes(b"garbage")
    with loomdb.open(tmp_path / "s") as again:
        assert again.vector_search(x[7], k=1)[0].id == "n7"
    (directory / "CURRENT").unlink()
    with loomdb.open(tmp_path / "s") as again:
        assert again.vector_search(x[8], k=1)[0].id == "n8"


def test_index_for_other_settings_is_rebuilt(tmp_path: Path) -> None:
    db, x = open_filled(tmp_path / "s")
    db.close()
    directory = index_dir(tmp_path / "s")
    current = (directory / "CURRENT").read_text().replace('"f32"', '"f16"')
    (directory / "CURRENT").write_text(current)
    with loomdb.open(tmp_path / "s") as again:
        assert again.vector_search(x[3], k=1)[0].id == "n3"
        assert again.check() == []


def test_reindex_rebuilds_every_tenant(tmp_path: Path) -> None:
    db, x = open_filled(tmp_path / "s")
    db.tenant("other").add_nodes([{"id": "o"}], vectors=x[:1])
    sizes = db.reindex()
    assert sizes == {("text", "default"): 300, ("text", "other"): 1}
    assert db.check() == []
    db.close()


def test_checkpoint_saves_unused_indexes_and_purges_the_log(tmp_path: Path) -> None:
    db, x = open_filled(tmp_path / "s")
    db.tenant("other").add_nodes([{"id": "o"}], vectors=x[:1])
    assert db.stats()["log_entries"] > 0
    db.checkpoint()  # neither index was used: both are built, saved and stamped
    assert (index_dir(tmp_path / "s").parent / "other" / "CURRENT").exists()
    assert db.stats()["log_entries"] == 0
    db.add_node("new", vector=-x[1])
    db.backend.close()  # crash: the new vector lives only in the table and the log
    with loomdb.open(tmp_path / "s") as again:
        assert again.vector_search(-x[1], k=1)[0].id == "new"
        assert again.check() == []


def test_mapped_index_takes_new_vectors_after_reopen(tmp_path: Path) -> None:
    for quantization in ("f32", "f16", "i8", "b1"):
        path = tmp_path / quantization
        with loomdb.open(path) as db:
            x = unit_vectors(300, 8)
            db.create_space("text", 8, quantization=quantization)  # type: ignore[arg-type]
            db.add_nodes([{"id": f"n{i}"} for i in range(300)], vectors=x)
        with loomdb.open(path) as db:  # loaded memory-mapped
            assert db.vector_search(x[4], k=1)[0].id == "n4"
            db.delete_node("n4")
            db.checkpoint()  # saves the mapped index (tombstone only), old file removed
            db.add_node("new", vector=-x[4])  # promotes to owned memory, then adds
            assert db.vector_search(-x[4], k=1)[0].id == "new"
            assert db.check() == []
        with loomdb.open(path) as db:
            assert db.vector_search(-x[4], k=1)[0].id == "new"


def test_reindex_reports_progress(tmp_path: Path) -> None:
    db, _ = open_filled(tmp_path / "s", n=120_000 // 1000)
    calls: list[tuple[int, int]] = []
    db.reindex(progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (120, 120)
    db.close()


def test_warm_up_reads_the_saved_index_once(tmp_path: Path) -> None:
    db, x = open_filled(tmp_path / "s")
    db.close()
    with loomdb.open(tmp_path / "s") as again:
        size = sum(p.stat().st_size for p in index_dir(tmp_path / "s").glob("gen-*.faiss"))
        assert again.warm_up() == size
        assert again.vector_search(x[3], k=1)[0].id == "n3"
        assert again.warm_up() == size  # still mapped: reading again is harmless


def test_warm_up_of_a_quantized_space_reads_its_vectors_too(tmp_path: Path) -> None:
    with loomdb.open(tmp_path / "s") as db:
        db.create_space("text", 8, quantization="i8")
        db.add_nodes([{"id": f"n{i}"} for i in range(50)], vectors=unit_vectors(50, 8))
    with loomdb.open(tmp_path / "s") as again:
        index_bytes = sum(
            p.stat().st_size for p in index_dir(tmp_path / "s").glob("gen-*.faiss"))
        assert again.warm_up() == index_bytes + 50 * 8 * 4


def test_stats_count_live_and_dead_entries_in_every_quantization(tmp_path: Path) -> None:
    for quantization in ("f32", "f16", "i8", "b1"):
        with loomdb.open(tmp_path / quantization) as db:
            db.create_space("text", 8, quantization=quantization)  # type: ignore[arg-type]
            db.add_nodes([{"id": f"n{i}"} for i in range(100)], vectors=unit_vectors(100, 8))
        with loomdb.open(tmp_path / quantization) as db:  # loaded memory-mapped
            db.delete_node("n4")
            stats = db.view.stats(db.space(), "default")
            assert (stats.size, stats.dead, stats.seq) == (99, 1, db.seq)
            assert stats.bytes > 100 * (1 if quantization == "b1" else 8)
