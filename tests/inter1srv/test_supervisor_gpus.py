from inter1srv.supervisor import visible_gpus, worker_gpu


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
