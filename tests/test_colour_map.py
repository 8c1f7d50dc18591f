"""The student's colour map (training.colour_map): a quadratic function of the network's own output colour, fitted by
least squares after training, kept only where it helps, and left in float by the int8 quantisation."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from studio.models import BadStudent  # noqa: E402
from studio.models.student_unet import COLOUR_TERMS, StudentConfig, StudentUNet, colour_terms  # noqa: E402
from training.colour_map import fit, without_map  # noqa: E402


def trained_like(config: StudentConfig, seed: int = 1) -> StudentUNet:
    torch.manual_seed(seed)
    model = StudentUNet(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("colour."):
                torch.nn.init.normal_(p, 0, 0.05)
    return model.eval()


def test_an_unfitted_map_changes_nothing_and_the_config_is_checked(tmp_path):
    plain = trained_like(StudentConfig(width=8))
    mapped = StudentUNet(StudentConfig(width=8, colour_map=1)).eval()
    mapped.load_state_dict({**plain.state_dict(), **{k: v for k, v in mapped.state_dict().items()
                                                    if k.startswith("colour.")}})
    x, f = torch.rand(2, 3, 32, 48), torch.rand(2, 3)
    assert torch.equal(mapped(x, f), plain(x, f))  # zero-initialised: the network's own output
    assert colour_terms(x).shape == (2, COLOUR_TERMS, 32, 48)
    assert torch.allclose(colour_terms(x)[:, 6], x[:, 0] * x[:, 1])
    assert torch.equal(without_map(mapped)(x, f), plain(x, f)) and without_map(mapped).config.colour_map == 0
    with torch.no_grad():  # a fitted map: its change is linear in the terms colour_fit_inputs gives the fit
        torch.nn.init.normal_(mapped.colour.weight, 0, 0.2)
        torch.nn.init.normal_(mapped.colour.bias, 0, 0.05)
        y, terms = plain.colour_fit_inputs(x, f)
        expected = y + torch.einsum("oc,bchw->bohw", mapped.colour.weight[:, :, 0, 0], terms) + \
            mapped.colour.bias[None, :, None, None]
        assert torch.allclose(mapped.train()(x, f), expected, atol=1e-5)
        assert float((mapped(x, f) - y).abs().mean()) > 0.01
    mapped.eval()
    for other in (StudentConfig(guided=1, colour_map=1), StudentConfig(refine=4, colour_map=1)):
        with pytest.raises(ValueError, match="plain head"):
            StudentUNet(other)
    mapped.save_pretrained(tmp_path)
    assert StudentConfig.read(tmp_path).colour_map == 1
    (tmp_path / "config.json").write_text(json.dumps({**json.loads((tmp_path / "config.json").read_text()),
                                                      "colour_map": 2}))
    with pytest.raises(BadStudent, match="colour_map must be an integer, 0 or 1"):
        StudentConfig.read(tmp_path)
    plain.save_pretrained(tmp_path / "no-map")  # a config asking for a map whose weights have none
    (tmp_path / "no-map" / "config.json").write_text(json.dumps({"width": 8, "colour_map": 1}))
    with pytest.raises(BadStudent, match="not this student's weights"):
        StudentUNet.from_pretrained(tmp_path / "no-map")


class MappedPairs:
    """Pairs whose targets are a known colour map of the network's output (crops of real photos), with a few ink
    pixels much darker than the network that the fit must leave out."""

    def __init__(self, core, photos, weight, bias):
        from studio.io import load_image

        self.items = []
        rng = np.random.default_rng(0)
        for p in photos:
            img = load_image(p)
            for _ in range(2):
                top, left = rng.integers(0, img.shape[0] - 64), rng.integers(0, img.shape[1] - 64)
                x = (img[top:top + 64, left:left + 64].astype(np.float32) / 255.0)
                f = rng.random(3).astype(np.float32)
                with torch.no_grad():
                    pred, terms = core.colour_fit_inputs(torch.from_numpy(x).permute(2, 0, 1)[None],
                                                         torch.from_numpy(f)[None])
                    t = pred + torch.einsum("oc,bchw->bohw", weight, terms) + bias[None, :, None, None]
                y = t[0].permute(1, 2, 0).numpy().copy()
                y[::9, ::9] = np.minimum(y[::9, ::9], pred[0].permute(1, 2, 0).numpy()[::9, ::9] - 0.5)
                self.items.append((x, y.astype(np.float32), f))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_the_fit_finds_a_known_colour_map_past_the_ink(media_dir):
    core = trained_like(StudentConfig(width=8))
    weight = torch.zeros(3, COLOUR_TERMS)
    weight[2, 2], weight[2, 5], weight[0, 6], weight[1, 1] = -0.15, 0.1, 0.08, 0.05  # blues muted, reds warmed
    bias = torch.tensor([0.02, -0.01, 0.03])
    photos = sorted((media_dir / "images").glob("portrait_*.jpg"))[:4] + \
        sorted((media_dir / "images").glob("bg_*.jpg"))[:2]
    pairs = MappedPairs(core, photos, weight, bias)
    w, b, used = fit(core, pairs)
    assert 0.9 * len(pairs) * 64 * 64 / 16 < used < len(pairs) * 64 * 64 / 16  # every 4th pixel, the ink left out
    with torch.no_grad():  # the fitted map does what the known one does on these colours (to 1/255)
        for x, _, f in pairs.items[:4]:
            _, terms = core.colour_fit_inputs(torch.from_numpy(x).permute(2, 0, 1)[None], torch.from_numpy(f)[None])
            known = torch.einsum("oc,bchw->bohw", weight, terms) + bias[None, :, None, None]
            got = torch.einsum("oc,bchw->bohw", torch.from_numpy(w), terms) + torch.from_numpy(b)[None, :, None, None]
            assert float((known - got).abs().max()) < 1 / 255


def test_the_command_refuses_bad_input_in_one_line(tmp_path, capsys):
    from training.colour_map import main

    StudentUNet(StudentConfig(width=8)).save_pretrained(tmp_path / "student")
    before = (tmp_path / "student" / "model.safetensors").read_bytes()
    cases = [(["--student", str(tmp_path / "none"), "--pairs", str(tmp_path)], "not a student folder"),
             (["--student", str(tmp_path / "student"), "--pairs", str(tmp_path / "none")], "manifest.jsonl")]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err and "Traceback" not in err
    assert (tmp_path / "student" / "model.safetensors").read_bytes() == before
    with pytest.raises(SystemExit):
        main(["--student", str(tmp_path / "student"), "--pairs", str(tmp_path), "--pairs-used", "0"])
