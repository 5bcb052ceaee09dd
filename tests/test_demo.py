"""The demo pipeline on tiny settings: runs, reuses finished runs, writes one self-contained page."""
from genlab.demo import DemoModel, run_demo


def test_demo_report(tmp_path, capsys):
    models = [
        DemoModel("pca", "PCA", "linear", {"latent_dim": 4}),
        DemoModel("conv-ae", "AE", "conv", {"latent_dim": 4, "channels": (8, 16)}, {"epochs": 1}),
        DemoModel("vae", "VAE", "dense", {"latent_dim": 2, "hidden": (32,)}, {"epochs": 1}),
        DemoModel("dcgan", "DCGAN", "generator", {"latent_dim": 4, "channels": 8}, {"epochs": 1}),
        DemoModel("denoise", "Denoise", "U-Net", {"channels": (4, 8)}, {"epochs": 1}),
        DemoModel("superres", "Superres", "ESPCN", {"channels": (8, 4)}, {"epochs": 1}),
        DemoModel("diffusion", "Diffusion", "DDIM", {"channels": 8, "channel_mults": (1,), "sample_steps": 5},
                  {"epochs": 1, "snapshot_every": -1}),
    ]
    page = run_demo(tmp_path, progress=False, models=models)
    text = page.read_text()
    assert page == tmp_path / "report.html"
    # test images, 3 reconstructions, 4 sample grids, 2 image-to-image figures, 5 interpolation
    # strips (the DCGAN and the diffusion model between two seeds), 4 latent maps (the diffusion
    # model gets a note instead)
    assert text.count("<figure>") == 1 + 3 + 4 + 2 + 5 + 4
    assert "Superres: input, output, clean; test PSNR" in text and "for bicubic upscaling x2" in text
    assert "Diffusion: no map here" in text and "DCGAN: 1000 draws of z from the prior" in text
    assert (tmp_path / "interpolation-dcgan.png").exists() and (tmp_path / "latent-map-dcgan.png").exists()
    assert (tmp_path / "interpolation-diffusion.png").exists() and not (tmp_path / "latent-map-diffusion.png").exists()
    assert "No prior, so no samples: AE" in text and "<td>VAE</td>" in text
    # Each model's own measure beside its baseline: no row of dashes.
    assert text.count("(real images)") == 2 and text.count("(the mean image)") == 3
    assert text.count("(trivial answer)") == 2 and "<td>-</td>" not in text
    assert "training" in capsys.readouterr().out
    # A second run reuses the finished models instead of training them again.
    stamp = (tmp_path / "vae" / "model.safetensors").stat().st_mtime_ns
    run_demo(tmp_path, progress=False, models=models)
    assert (tmp_path / "vae" / "model.safetensors").stat().st_mtime_ns == stamp
    assert "training" not in capsys.readouterr().out
