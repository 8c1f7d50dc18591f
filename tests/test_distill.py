"""Distillation smoke runs: teacher pairs (resumable), the student model, a 2-step distil with resume."""
import json
import math
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from studio import load_config  # noqa: E402
from studio.models.student_unet import StudentConfig, StudentUNet  # noqa: E402
from training.distill import DistillConfig, distill  # noqa: E402
from training.make_pairs import PairsConfig, make_pairs  # noqa: E402

STUDIO = load_config()
PHOTOS = ["portrait_light_skin_asian_01.jpg", "portrait_dark_skin_01.jpg", "group_4faces_diverse_skin_01.jpg",
          "bg_mountains_02.jpg"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory, media_dir):
    d = tmp_path_factory.mktemp("photos")
    for n in PHOTOS:
        shutil.copy(media_dir / "images" / n, d / n)
    return d


@pytest.fixture(scope="module")
def pairs(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("pairs")
    make_pairs(PairsConfig(images=(str(photos),), out=str(out), pairs=12, size=64, seed=1), STUDIO)
    return out


def test_pairs_are_written_with_a_manifest_and_resume(pairs, photos):
    rows = [json.loads(l) for l in (pairs / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and len({r["id"] for r in rows}) == 12
    assert all(set(r["factors"]) == {"line", "texture", "color", "warp"} for r in rows)
    assert len({r["factors"]["line"] for r in rows}) > 6  # factors are sampled per pair
    from PIL import Image
    a = np.asarray(Image.open(pairs / f"{rows[0]['id']}_in.png"))
    b = np.asarray(Image.open(pairs / f"{rows[0]['id']}_out.png"))
    assert a.shape == b.shape == (64, 64, 3) and np.abs(a.astype(int) - b.astype(int)).mean() > 3
    # a crash mid-run: lose one pair's target; the re-run redoes exactly that one and appends nothing else
    (pairs / f"{rows[3]['id']}_out.png").unlink()
    seen = []
    make_pairs(PairsConfig(images=(str(photos),), out=str(pairs), pairs=12, size=64, seed=1), STUDIO,
               on_progress=lambda n, t, row: seen.append(row["id"]))
    assert seen == [rows[3]["id"]]


def test_student_roundtrip_and_factor_inputs(tmp_path):
    torch.manual_seed(0)
    model = StudentUNet(StudentConfig(width=8, depth=2, refine=4))  # the optional full-res refinement too
    for p in model.parameters():  # a trained-like model: FiLM and output layers are not zero
        torch.nn.init.normal_(p, 0, 0.05)
    x = torch.rand(2, 3, 64, 96)
    f = torch.tensor([[0.1, 0.2, 0.3], [0.9, 0.8, 0.7]])
    y = model(x, f)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    assert float((y[0] - model(x[:1], f[1:])[0]).abs().mean()) > 1e-4  # the factors change the output
    model.save_pretrained(tmp_path)
    again = StudentUNet.from_pretrained(tmp_path)
    assert torch.allclose(again(x, f), model.eval()(x, f), atol=1e-6)


def test_guided_head_places_edges_where_the_photo_has_them(tmp_path):
    """The trainable guided filter (StudentConfig.guided) takes the network's 1/4-resolution prediction to full
    resolution along the photo's own edges: untrained (the network adds nothing to the photo's block means), a step
    edge between two 4x4 blocks comes out sharp, where the plain head's bilinear base smears it over the blocks.
    Trained, it exports to ONNX with the photo's size free and loads back the same."""
    from realtime.export import export_onnx

    torch.manual_seed(0)
    x = torch.full((1, 3, 64, 64), 0.2)
    x[..., 30:] = 0.8  # a vertical edge inside a 4x4 block (columns 28-31)
    f = torch.full((1, 3), 0.5)
    plain, guided = StudentUNet(StudentConfig(width=8)).eval(), StudentUNet(StudentConfig(width=8, guided=1)).eval()
    with torch.no_grad():
        torch.nn.init.constant_(guided.head.guide[0].weight, 0.3)  # a guide that follows the photo's lightness
        torch.nn.init.zeros_(guided.head.guide[0].bias)
        torch.nn.init.constant_(guided.head.guide[2].weight, 1.0)
        row_plain, row_guided = plain(x, f)[0, 0, 32], guided(x, f)[0, 0, 32]
    err_plain = float((row_plain - x[0, 0, 32]).abs().max())
    err_guided = float((row_guided - x[0, 0, 32]).abs().max())
    assert err_plain > 0.15 and err_guided < 0.05, (err_plain, err_guided)
    for p in guided.parameters():  # trained-like
        torch.nn.init.normal_(p, 0, 0.05)
    guided.save_pretrained(tmp_path)
    export_onnx(tmp_path)  # raises ParityError when onnxruntime differs from torch at two other sizes
    again = StudentUNet.from_pretrained(tmp_path)
    assert again.config.guided == 1 and torch.allclose(again(x, f), guided.eval()(x, f), atol=1e-6)
    with pytest.raises(ValueError, match="not both"):
        StudentUNet(StudentConfig(guided=1, refine=4))
    with pytest.raises(ValueError, match="needs a guided head"):
        StudentUNet(StudentConfig(gate=1))
    gated = StudentUNet(StudentConfig(width=8, guided=1, gate=1)).eval()  # its gate starts half open
    with torch.no_grad():
        y = gated(x, f)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_guided_student_quantises_to_int8_within_the_gate(tmp_path, media_dir):
    """A guided head's filter subtracts products of means: quantised to 8 bits as the plain students are, it would
    cancel to noise. Only its convolutions are quantised (realtime.export), and the int8 model passes the 40 dB
    parity gate on held-out photos (quantize_int8 raises ParityError otherwise)."""
    import json as _json

    from realtime.export import export_onnx, quantize_int8

    torch.manual_seed(1)
    model = StudentUNet(StudentConfig(width=8, guided=1))
    with torch.no_grad():
        for p in model.parameters():  # trained-like
            torch.nn.init.normal_(p, 0, 0.05)
        model.head.log_eps.fill_(math.log(1e-3))  # as trained (8.5e-4 on classic): a filter that follows the guide
        torch.nn.init.constant_(model.head.guide[0].weight, 0.3)
        torch.nn.init.constant_(model.head.guide[2].weight, 1.0)
    model.save_pretrained(tmp_path)
    export_onnx(tmp_path)
    photos = sorted((media_dir / "images").glob("*.jpg"))[:8]
    quantize_int8(tmp_path, photos, side=128)
    report = _json.loads((tmp_path / "int8.json").read_text())
    assert report["parity_psnr_min"] >= 40.0 and "convolutions only" in report["format"]


def test_a_colour_map_stays_float_in_the_int8_model(tmp_path, media_dir):
    """The colour map squares and multiplies the output's channels: its ops are left out of the quantisation, and the
    int8 model passes the parity gate."""
    import json as _json

    import onnx

    from realtime.export import export_onnx, quantize_int8

    torch.manual_seed(2)
    model = StudentUNet(StudentConfig(width=8, colour_map=1))
    with torch.no_grad():
        for p in model.parameters():  # trained-like
            torch.nn.init.normal_(p, 0, 0.05)
    model.save_pretrained(tmp_path)
    export_onnx(tmp_path)
    quantize_int8(tmp_path, sorted((media_dir / "images").glob("*.jpg"))[:8], side=128)
    report = _json.loads((tmp_path / "int8.json").read_text())
    assert report["parity_psnr_min"] >= 40.0 and "colour map in float" in report["format"]
    graph = onnx.load(str(tmp_path / "student.int8.onnx")).graph
    made_by = {o: n for n in graph.node for o in n.output}
    colour = [n for n in graph.node if n.name.startswith("/colour/")]
    conv = [n for n in colour if n.op_type == "Conv"]
    assert len(conv) == 1 and all(made_by[i].op_type != "DequantizeLinear" for i in conv[0].input if i in made_by)
    outside = {i for n in colour for i in n.input if i in made_by and not made_by[i].name.startswith("/colour/")
               and made_by[i].op_type != "Constant"}
    assert len(outside) == 1  # the map reads the network's output once and works in float from there
    assert any(n.op_type == "DequantizeLinear" for n in graph.node)  # the network is quantised


def test_distill_two_steps_saves_and_resumes(pairs, tmp_path):
    logs = []
    cfg = DistillConfig(pairs=str(pairs), out=str(tmp_path), steps=2, batch=2, crop=32, width=8, val_every=1)
    out = distill(cfg, log=logs.append)
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert (out / "checkpoint" / "state.json").is_file() and (out / "distill_config.json").is_file()
    assert (out / "pairs_config.json").read_text() == (pairs / "pairs_config.json").read_text()  # provenance
    assert StudentUNet.from_pretrained(out).config.width == 8
    report = json.loads((out / "report.json").read_text())
    assert report["n"] >= 1 and np.isfinite(report["psnr"]) and 0 < report["ssim"] <= 1
    assert report["by_factor"] and all(k.split("_")[0] in ("line", "texture", "color")
                                       for k in report["by_factor"])
    more = []
    distill(DistillConfig(**{**cfg.__dict__, "steps": 4, "resume": True}),
            on_progress=lambda s, t, i: "phase" not in i and more.append(s), log=logs.append)
    assert more == [3, 4] and any("resumed at step 2" in m for m in logs)


def test_distill_can_start_from_a_student(pairs, tmp_path):
    """--init: fine-tuning a student on new pairs (after the teacher changed) starts from its weights: with a zero
    learning rate the saved student is that student, and a student of another shape is refused in one line."""
    first = distill(DistillConfig(pairs=str(pairs), out=str(tmp_path / "a"), steps=2, batch=2, crop=32, width=8,
                                  val_every=1), log=lambda m: None)
    logs = []
    again = distill(DistillConfig(pairs=str(pairs), out=str(tmp_path / "b"), steps=1, batch=2, crop=32, width=8,
                                  lr=0.0, val_every=1, init=str(first)), log=logs.append)
    x, f = torch.rand(1, 3, 32, 32), torch.full((1, 3), 0.5)
    assert torch.equal(StudentUNet.from_pretrained(again)(x, f), StudentUNet.from_pretrained(first)(x, f))
    assert any("starting from" in m for m in logs)
    scratch = distill(DistillConfig(pairs=str(pairs), out=str(tmp_path / "c"), steps=1, batch=2, crop=32, width=8,
                                    lr=0.0, val_every=1), log=lambda m: None)
    assert not torch.equal(StudentUNet.from_pretrained(scratch)(x, f), StudentUNet.from_pretrained(first)(x, f))
    with pytest.raises(ValueError, match="--init"):
        distill(DistillConfig(pairs=str(pairs), out=str(tmp_path / "d"), steps=1, batch=2, crop=32, width=16,
                              init=str(first)), log=lambda m: None)


def test_distill_fits_the_colour_map_and_keeps_it_only_where_it_helps(pairs, tmp_path):
    """After the last step the colour map is fitted on the pairs (a progress phase of its own) and recorded in the
    report; it is kept only with the held-out gain asked for; stopping leaves the student as it was; --init takes a
    mapped student's network alone."""
    from training.colour_map import add_colour_map, without_map

    seen = []
    out = distill(DistillConfig(pairs=str(pairs), out=str(tmp_path / "s"), steps=2, batch=2, crop=32, width=8,
                                val_every=1), on_progress=lambda s, t, i: seen.append((s, t, i.get("phase"))),
                  log=lambda m: None)
    record = json.loads((out / "report.json").read_text())["colour_map"]
    assert record["pixels"] > 0 and StudentUNet.from_pretrained(out).config.colour_map == int(record["kept"])
    assert [p for _, _, p in seen[:2]] == [None, None] and seen[-1] == (seen[-1][1], seen[-1][1], "colour map")
    network = without_map(StudentUNet.from_pretrained(out))
    x, f = torch.rand(1, 3, 32, 32), torch.full((1, 3), 0.5)

    assert add_colour_map(out, pairs, min_gain=-100, log=lambda m: None)["kept"]  # any map passes
    mapped = StudentUNet.from_pretrained(out)
    assert mapped.config.colour_map == 1 and not torch.equal(mapped(x, f), network(x, f))
    assert torch.equal(without_map(mapped)(x, f), network(x, f))  # the network itself is never changed
    before = (out / "model.safetensors").read_bytes()
    assert add_colour_map(out, pairs, log=lambda m: None, should_stop=lambda: True) is None
    assert (out / "model.safetensors").read_bytes() == before
    record = add_colour_map(out, pairs, min_gain=100, log=lambda m: None)  # no map gains 100 dB: it is taken off
    assert not record["kept"] and record["val_off_ink_psnr_with"] != record["val_off_ink_psnr_without"]
    assert StudentUNet.from_pretrained(out).config.colour_map == 0
    assert torch.equal(StudentUNet.from_pretrained(out)(x, f), network(x, f))

    add_colour_map(out, pairs, min_gain=-100, log=lambda m: None)
    again = distill(DistillConfig(pairs=str(pairs), out=str(tmp_path / "t"), steps=1, batch=2, crop=32, width=8,
                                  lr=0.0, val_every=1, init=str(out), colour_map=0), log=lambda m: None)
    assert StudentUNet.from_pretrained(again).config.colour_map == 0
    assert torch.equal(StudentUNet.from_pretrained(again)(x, f), network(x, f))


def test_distill_lowers_the_loss_on_a_fixed_batch(pairs, tmp_path):
    from training.datasets import PairDataset
    from training.losses import distill_loss

    data = PairDataset(pairs)
    x = torch.from_numpy(np.stack([data[i][0] for i in range(4)])).permute(0, 3, 1, 2)
    y = torch.from_numpy(np.stack([data[i][1] for i in range(4)])).permute(0, 3, 1, 2)
    f = torch.from_numpy(np.stack([data[i][2] for i in range(4)]))
    before = float(distill_loss(StudentUNet(StudentConfig(width=8))(x, f), y))  # the untrained student: the smooth base
    out = distill(DistillConfig(pairs=str(pairs), out=str(tmp_path), steps=40, batch=4, crop=64, width=8,
                                lr=3e-3, val_every=0), log=lambda m: None)
    after = float(distill_loss(StudentUNet.from_pretrained(out)(x, f), y))
    assert after < before, (before, after)


def test_ray_workers_give_the_same_pairs(photos, tmp_path):
    pytest.importorskip("ray")
    local, spread = tmp_path / "local", tmp_path / "ray"
    make_pairs(PairsConfig(images=(str(photos),), out=str(local), pairs=4, size=48, seed=3), STUDIO)
    make_pairs(PairsConfig(images=(str(photos),), out=str(spread), pairs=4, size=48, seed=3, ray=True, workers=2),
               STUDIO)
    from PIL import Image
    for i in range(4):
        a = np.asarray(Image.open(local / f"{i:06d}_out.png")).astype(int)
        b = np.asarray(Image.open(spread / f"{i:06d}_out.png")).astype(int)
        assert np.abs(a - b).max() <= 1
    import ray
    ray.shutdown()


def test_fixed_factors_are_held(photos, tmp_path):
    make_pairs(PairsConfig(images=(str(photos),), out=str(tmp_path), pairs=3, size=48, seed=4,
                           fixed=(("warp", 0.0), ("line", 0.5))), STUDIO)
    rows = [json.loads(l) for l in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert all(r["factors"]["warp"] == 0.0 and r["factors"]["line"] == 0.5 for r in rows)
    assert len({r["factors"]["texture"] for r in rows}) == 3


def test_warped_pairs_keep_the_warped_photo_as_input(tmp_path, media_dir):
    """The student learns the style of an already warped face (the realtime path warps geometrically), so a pair
    made with warp > 0 stores the photo warped as the teacher warped it; warp 0 stores the crop itself."""
    from PIL import Image
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(media_dir / "images" / "portrait_medium_dark_skin_01.jpg", photos / "p.jpg")
    ins = {}
    for warp in (0.0, 1.0):
        out = tmp_path / f"w{warp}"
        make_pairs(PairsConfig(images=(str(photos),), out=str(out), pairs=1, size=256, seed=2,
                               fixed=(("warp", warp),)), STUDIO)
        ins[warp] = np.asarray(Image.open(out / "000000_in.png")).astype(int)
    diff = np.abs(ins[1.0] - ins[0.0]).max(axis=2)
    assert diff.max() > 40  # the face moved
    assert (diff > 8).mean() < 0.25  # and little else did: it is a local face warp, not a new crop


def test_augmented_pairs_vary_pose_and_light_and_say_how(photos, tmp_path):
    """--augment: each crop is mirrored and/or relit before the teacher sees it, reproducibly from the seed; the
    manifest says how; without it the plan is the one it always was."""
    import random

    from PIL import Image

    from training.datasets import ImageFolderDataset, augment_photo, sample_augment
    from training.make_pairs import plan

    base = PairsConfig(images=(str(photos),), out=str(tmp_path / "a"), pairs=6, size=48, seed=5, fixed=(("warp", 0.0),))
    aug = PairsConfig(**{**base.__dict__, "augment": True})
    ds = ImageFolderDataset([photos])
    plain, varied = plan(base, ds), plan(aug, ds)
    assert [s.augment for s in plain] == [None] * 6
    assert [(s.crop, s.factors) for s in varied][:1] == [(s.crop, s.factors) for s in plain][:1]
    assert plan(aug, ds) == varied and base.digest() != aug.digest()
    draws = [sample_augment(random.Random(i)) for i in range(200)]
    assert 0.35 < np.mean([d["flip"] for d in draws]) < 0.65 and 0.7 < np.mean(["gamma" in d for d in draws]) < 0.9

    img = np.asarray(Image.open(photos / "portrait_dark_skin_01.jpg").convert("RGB").resize((64, 48)))
    np.testing.assert_array_equal(augment_photo(img, {"flip": False}), img)  # nothing asked, nothing changed
    np.testing.assert_array_equal(augment_photo(img, {"flip": True}), img[:, ::-1])
    assert augment_photo(img, {"gamma": 0.7}).mean() > img.mean() + 5  # brighter
    warm = augment_photo(img, {"warmth": 0.12}).astype(float)
    assert warm[..., 0].mean() > img[..., 0].mean() and warm[..., 2].mean() < img[..., 2].mean()
    grey = augment_photo(img, {"saturation": 0.0}).astype(int)
    assert np.abs(grey[..., 0] - grey[..., 2]).max() <= 1

    make_pairs(aug, STUDIO)
    rows = [json.loads(l) for l in (tmp_path / "a" / "manifest.jsonl").read_text().splitlines()]
    assert [r["augment"] for r in rows] == [s.augment for s in varied]
    spec = varied[0]  # the pair's input is that crop with that variation
    src = np.asarray(Image.open(spec.source).convert("RGB"))
    import cv2

    x, y, side = spec.crop
    crop = cv2.resize(src[y:y + side, x:x + side], (48, 48), interpolation=cv2.INTER_AREA)
    stored = np.asarray(Image.open(tmp_path / "a" / "000000_in.png")).astype(int)
    assert np.abs(stored - augment_photo(crop, spec.augment)).max() <= 1


def test_a_distill_job_finds_a_character_saved_under_the_studios_own_data_dir(photos, tmp_path):
    """A studio started with `--set data_dir=...` saves its characters there; a distill job started from that
    studio must use them (make_pairs loaded the default config itself before, and did not find the character)."""
    import yaml

    from training.jobs import start_distill_job

    cfg = load_config(overrides=[f"data_dir={tmp_path / 'data'}"])
    preset = yaml.safe_load((STUDIO.resolve("configs") / "characters" / "classic.yaml").read_text())
    preset.update(name="hana", display_name="Hana")
    folder = tmp_path / "data" / "characters" / "hana"
    folder.mkdir(parents=True)
    (folder / "character.yaml").write_text(yaml.safe_dump(preset))
    job = start_distill_job(cfg, character="hana", images=[str(p) for p in sorted(photos.iterdir())[:2]], pairs=2,
                            steps=2, size=48)
    state = job.wait(timeout=600)
    assert state.status == "done", state.message
    assert (tmp_path / "data" / "students" / "hana" / "model.safetensors").is_file()
    rows = (tmp_path / "data" / "pairs" / "hana" / "manifest.jsonl").read_text().splitlines()
    assert len(rows) == 2 and all(json.loads(r)["character"] == "hana" for r in rows)


def test_distilling_with_no_photos_says_where_to_put_them(tmp_path):
    from studio.config import load_config
    from training.jobs import start_distill_job

    cfg = load_config(None, [f"data_dir={tmp_path}"])
    with pytest.raises(ValueError, match="no photos to learn from for 'noir' yet: upload some") as exc:
        start_distill_job(cfg, character="noir", pairs=2, steps=2)
    assert str(tmp_path / "datasets" / "distill" / "noir") in str(exc.value)
