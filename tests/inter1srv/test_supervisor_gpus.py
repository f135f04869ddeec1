from inter1srv.supervisor import gpus_in_listing, visible_gpus, worker_gpu, worker_gpu_env


def test_one_worker_per_gpu_round_robin():
    assert [worker_gpu(i, ["0", "1"], "auto") for i in range(4)] == ["0", "1", "0", "1"]
    assert worker_gpu(0, ["3"], "cuda") == "3"
    assert worker_gpu(0, ["0", "1"], "cpu") is None
    assert worker_gpu(0, [], "auto") is None


def test_visible_gpus_honours_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert visible_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpus() == []


def test_gpus_from_nvidia_smi_listing_by_index_and_mig_instance():
    listing = """GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-6b1f0c3e-0000-0000-0000-000000000000)
  MIG 3g.40gb     Device  0: (UUID: MIG-8f2a9d1c-1111-1111-1111-111111111111)
  MIG 3g.40gb     Device  1: (UUID: MIG-8f2a9d1c-2222-2222-2222-222222222222)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-6b1f0c3e-3333-3333-3333-333333333333)
GPU 3: NVIDIA H100 80GB HBM3 (UUID: GPU-6b1f0c3e-4444-4444-4444-444444444444)
"""
    assert gpus_in_listing(listing) == ["MIG-8f2a9d1c-1111-1111-1111-111111111111",
                                        "MIG-8f2a9d1c-2222-2222-2222-222222222222", "1", "3"]
    assert gpus_in_listing("") == []
    assert gpus_in_listing("No devices were found\n") == []


def test_worker_environment_counts_gpus_as_nvidia_smi_does():
    assert worker_gpu_env(1, ["0", "1"], "auto", {}) == {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert worker_gpu_env(0, ["2"], "cuda", {"CUDA_DEVICE_ORDER": "FASTEST_FIRST"})["CUDA_DEVICE_ORDER"] == "FASTEST_FIRST"
    assert worker_gpu_env(0, ["0"], "cpu", {}) == {}
    assert worker_gpu_env(0, [], "auto", {}) == {}
