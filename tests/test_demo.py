"""The demo pipeline on tiny settings: runs, reuses finished runs, writes one self-contained page."""
from genlab.demo import DemoModel, run_demo


def test_demo_report(tmp_path, capsys):
    models = [
        DemoModel("pca", "PCA", "linear", {"latent_dim": 4}),
        DemoModel("conv-ae", "AE", "conv", {"latent_dim": 4, "channels": (8, 16)}, {"epochs": 1}),
        DemoModel("vae", "VAE", "dense", {"latent_dim": 2, "hidden": (32,)}, {"epochs": 1}),
    ]
    page = run_demo(tmp_path, progress=False, models=models)
    text = page.read_text()
    assert page == tmp_path / "report.html"
    # test images, 3 reconstructions, 2 sample grids, 3 interpolation strips, 3 latent maps
    assert text.count("<figure>") == 1 + 3 + 2 + 3 + 3
    assert "No prior, so no samples: AE" in text and "<td>VAE</td>" in text
    assert "training" in capsys.readouterr().out
    # A second run reuses the finished models instead of training them again.
    stamp = (tmp_path / "vae" / "model.safetensors").stat().st_mtime_ns
    run_demo(tmp_path, progress=False, models=models)
    assert (tmp_path / "vae" / "model.safetensors").stat().st_mtime_ns == stamp
    assert "training" not in capsys.readouterr().out
