"""read_cellreg on MATLAB v5 and v7.3-style files, validation, matching by unit id."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io

from drift.io import RecordingWarning, match_unit_ids, read_cellreg, validate_registration

# CellReg layout: registered cells x sessions, 1-based, 0 = not found.
CELLREG = np.array(
    [
        [1, 2, 0],
        [2, 0, 1],
        [3, 1, 3],
        [0, 3, 2],
        [0, 0, 4],  # found in the last session only
    ],
    dtype=float,
)
EXPECTED = (CELLREG - 1).astype(int)


def _write_v73(path, *, struct: bool):
    """Mimic a MATLAB v7.3 file: 512-byte header in the HDF5 user block, arrays transposed."""
    with h5py.File(path, "w", userblock_size=512) as f:
        if struct:
            group = f.create_group("cell_registered_struct")
            group.attrs["MATLAB_class"] = np.bytes_("struct")
            dset = group.create_dataset("cell_to_index_map", data=CELLREG.T)
            group.create_dataset("spatial_footprints_corr", data=np.zeros((3, 5)))
        else:
            dset = f.create_dataset("cell_to_index_map", data=CELLREG.T)
        dset.attrs["MATLAB_class"] = np.bytes_("double")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Tue May  2 09:30:00 2023 HDF5"
    with open(path, "r+b") as f:
        f.write(header.ljust(116, b" "))


@pytest.mark.parametrize("layout", ["top", "struct"])
def test_read_v5(tmp_path, layout):
    path = tmp_path / f"cellRegistered_{layout}.mat"
    if layout == "top":
        scipy.io.savemat(path, {"cell_to_index_map": CELLREG})
    else:
        struct = {"cell_to_index_map": CELLREG, "cell_scores": np.ones(5)}
        scipy.io.savemat(path, {"cell_registered_struct": struct})
    reg = read_cellreg(path, n_cells=[3, 3, 4])
    np.testing.assert_array_equal(reg, EXPECTED)
    assert reg.dtype == np.int64


@pytest.mark.parametrize("struct", [False, True])
def test_read_v73(tmp_path, struct):
    path = tmp_path / "cellRegistered.mat"
    _write_v73(path, struct=struct)
    assert h5py.is_hdf5(path)
    np.testing.assert_array_equal(read_cellreg(path), EXPECTED)


def test_read_array_and_npy(tmp_path):
    np.testing.assert_array_equal(read_cellreg(CELLREG.astype(int)), EXPECTED)
    np.save(tmp_path / "map.npy", CELLREG.astype(np.int32))
    np.testing.assert_array_equal(read_cellreg(tmp_path / "map.npy"), EXPECTED)


def test_rows_found_nowhere_are_dropped():
    with pytest.warns(RecordingWarning, match="dropped 1"):
        reg = read_cellreg(np.vstack([CELLREG, [0, 0, 0]]))
    np.testing.assert_array_equal(reg, EXPECTED)


def test_index_out_of_range_names_file_and_session(tmp_path):
    path = tmp_path / "cellRegistered.mat"
    scipy.io.savemat(path, {"cell_to_index_map": CELLREG})
    with pytest.raises(
        ValueError, match=r"cellRegistered\.mat.*cell index 3 .*session 2.* 3 cells"
    ):
        read_cellreg(path, n_cells=[3, 3, 3])


def test_wrong_file_type(tmp_path):
    text = tmp_path / "cellRegistered.txt"
    text.write_text("1 2 3\n")
    with pytest.raises(ValueError, match=r"cellRegistered\.txt: unsupported file type"):
        read_cellreg(text)
    fake = tmp_path / "fake.mat"
    fake.write_bytes(b"this is not a MATLAB file at all" * 10)
    with pytest.raises(ValueError, match=r"fake\.mat: not a readable MATLAB file"):
        read_cellreg(fake)
    with pytest.raises(ValueError, match=r"missing\.mat: no such file"):
        read_cellreg(tmp_path / "missing.mat")


def test_missing_variable_and_bad_values(tmp_path):
    path = tmp_path / "other.mat"
    scipy.io.savemat(path, {"something_else": CELLREG})
    with pytest.raises(ValueError, match=r"other\.mat: no cell_to_index_map.*something_else"):
        read_cellreg(path)
    h5 = tmp_path / "other73.mat"
    with h5py.File(h5, "w") as f:
        f.create_dataset("x", data=CELLREG)
    with pytest.raises(ValueError, match=r"other73\.mat: no cell_to_index_map"):
        read_cellreg(h5)
    with pytest.raises(ValueError, match="negative entry"):
        read_cellreg(np.array([[1, -2]]))
    with pytest.raises(ValueError, match="non-integer"):
        read_cellreg(np.array([[1.5, 2]]))
    with pytest.raises(ValueError, match="cell 0 of session 1 is registered to several units"):
        read_cellreg(np.array([[1, 1], [2, 1]]))


def test_validate_registration_session_count():
    with pytest.raises(ValueError, match="3 session columns but 2 sessions"):
        validate_registration(EXPECTED, [3, 3])
    with pytest.raises(ValueError, match="below -1"):
        validate_registration(np.array([[-2, 0]]))


def test_match_unit_ids():
    reg, ids = match_unit_ids([np.array([10, 4, 7]), np.array([7, 12]), np.array([4])])
    assert ids.tolist() == [4, 7, 10, 12]
    np.testing.assert_array_equal(reg, [[1, -1, 0], [2, 0, -1], [0, -1, -1], [-1, 1, -1]])
    with pytest.raises(ValueError, match=r"session 0 \(a\.nwb\): unit id 3 repeats"):
        match_unit_ids([np.array([3, 3])], sources=["a.nwb"])
