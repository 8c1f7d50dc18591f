"""Stable track ids for faces across the frames of a video, and the character chosen for each track.

Association is ByteTrack (roboflow's `trackers` package, the successor of supervision's ByteTrack): a
constant-velocity Kalman filter predicts each track's box, detections are matched to the predictions by
IoU with an optimal assignment, confident detections first and weak ones only to continue a track. A track
whose face is missed (occlusion, a turned head, a detector miss) coasts on its prediction for up to
`max_missed_frames` frames and takes back its id when the face reappears near where it was heading, so
two people who cross keep their ids. `trackers` is imported when the first tracker is made, not by
`import studio`.

    tracker = FaceTracker(max_missed_frames=30)
    cast = CharacterAssignments(default="classic")
    for frame in frames:                                  # RGB uint8
        tracks = tracker.update(face_backend.detect(frame))  # one Track per face, same order
        cast.assign(tracks[0].id, "hero")                 # e.g. when the user picks a character
        characters = [cast.character_for(t.id) for t in tracks]

Between two full detections `FaceFollower` carries each face's landmarks to the next frame by optical flow
(a few ms instead of a detection), so a video needs a detection only every few frames.

A face gets its id on its second consecutive frame; on the first its `id` is None (a face seen in one frame
only is most often a false detection). Ids count from 0 and are never reused within one tracker.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional, Sequence

import cv2
import numpy as np

from ..types import Box, Face
from .faces import (FACE_OVAL, LEFT_BROW, LEFT_EYE, LEFT_IRIS, LIPS_INNER, LIPS_OUTER, NOSE, NOSE_BOTTOM, RIGHT_BROW,
                    RIGHT_EYE, RIGHT_IRIS)

MESH_POINTS = 478  # mediapipe's refined face mesh
# The mesh's points the realtime step draws and warps from (its face strokes, studio.stylize.face_ink, the warp's
# targets, studio.stylize.face_warp.face_targets, and the face region, studio.compose.face_region): FaceFollower
# follows these by flow; the mesh's other points move with the nearest of them (FOLLOW_NEIGHBOURS).
FOLLOWED = tuple(sorted(set(FACE_OVAL + LEFT_EYE + RIGHT_EYE + LEFT_BROW + RIGHT_BROW + LIPS_OUTER + LIPS_INNER + NOSE
                            + NOSE_BOTTOM + LEFT_IRIS + RIGHT_IRIS)))
FOLLOW_NEIGHBOURS = 4
_FOLLOWED = np.array(FOLLOWED)
_CARRIED = np.setdiff1d(np.arange(MESH_POINTS), _FOLLOWED)  # the mesh's points that move with the followed ones


@dataclass(frozen=True)
class Track:
    """One face in one frame and the id of the person it belongs to (None while not yet confirmed)."""

    id: Optional[int]
    face: Face

    @property
    def box(self) -> Box:
        return self.face.box


_HEADING_FRAMES = 15  # how far ahead a lost face is looked for along its last motion (frames)
_REID_MEAN = 0.5  # the most a re-identification's cues may cost on average, each relative to its own limit
_CUT_SIDE = 16  # side of the grey thumbnails compared to find cuts
_LOOK_SIDE = 24  # side each colour region is shrunk to before its histogram
_LOOK_RATE = 0.1  # how fast a person's colours follow the latest frames
_CUT_LOOK = 0.5  # across a cut, the colours must be this much nearer than reid_look...
_CUT_RIVAL = 0.7  # ...and at most this fraction of the next nearest lost person's (or new face's) distance


def _thumbnail(frame: np.ndarray) -> np.ndarray:
    # Every k-th pixel first (the smaller side kept at 64 px or more): 0.2 ms for a 1080p frame instead of 4.4
    k = max(1, min(frame.shape[:2]) // 64)
    frame = np.ascontiguousarray(frame[::k, ::k])
    grey = frame if frame.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(frame[..., :3]), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (_CUT_SIDE, _CUT_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)


def _cut_score(a: np.ndarray, b: np.ndarray) -> float:
    """How unlike two frames' 16×16 grey thumbnails are: their mean absolute difference over their contrast, so a
    dim shot counts as much as a bright one."""
    return float(np.abs(a - b).mean() / (0.5 * (float(a.std()) + float(b.std())) + 8.0))


def _looks(frame: np.ndarray, box: Box) -> tuple:
    """Hue-saturation histograms of the face, the hair above it and the clothes below it (None where a region
    falls outside the frame)."""
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=2)
    h, w = frame.shape[:2]
    bw, bh = box.width, box.height
    cx = (box.x0 + box.x1) / 2
    regions = ((box.x0 + 0.15 * bw, box.y0 + 0.1 * bh, box.x1 - 0.15 * bw, box.y1 - 0.1 * bh),
               (box.x0, box.y0 - 0.35 * bh, box.x1, box.y0 + 0.05 * bh),
               (cx - 0.8 * bw, box.y1 + 0.3 * bh, cx + 0.8 * bw, box.y1 + 1.3 * bh))
    out = []
    for x0, y0, x1, y1 in regions:
        x0, y0, x1, y1 = int(max(0, x0)), int(max(0, y0)), int(min(w, x1)), int(min(h, y1))
        if x1 - x0 < 2 or y1 - y0 < 2:
            out.append(None)
            continue
        crop = cv2.resize(np.ascontiguousarray(frame[y0:y1, x0:x1, :3]), (_LOOK_SIDE, _LOOK_SIDE),
                          interpolation=cv2.INTER_AREA)
        hist = cv2.calcHist([cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)], [0, 1], None, [12, 4], [0, 180, 0, 256])
        out.append(hist.ravel().astype(np.float64) / (_LOOK_SIDE * _LOOK_SIDE))
    return tuple(out)


def _look_distance(a: Optional[tuple], b: Optional[tuple]) -> Optional[float]:
    """1 - the Bhattacharyya coefficient of two looks' histograms, averaged over the regions both have (0: the
    same colours, 1: none in common); None when they share none."""
    if a is None or b is None:
        return None
    d = [1.0 - float(np.sqrt(p * q).sum()) for p, q in zip(a, b) if p is not None and q is not None]
    return float(np.mean(d)) if d else None


@dataclass
class _Person:
    """What the tracker remembers of one person id: where and when they were last seen, how they were moving
    and what colours they wear."""

    id: int
    box: Optional[Box] = None
    seen: int = -1
    shot: int = 0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    look: Optional[tuple] = None

    def see(self, frame: int, shot: int, box: Box, look: Optional[tuple]) -> None:
        gap = frame - self.seen
        if self.box is not None and shot == self.shot and gap <= 5:
            step = (np.array(box.center) - np.array(self.box.center)) / gap
            self.velocity = 0.6 * self.velocity + 0.4 * step
        else:
            self.velocity = np.zeros(2)
        self.box, self.seen, self.shot = box, frame, shot
        if look is not None:
            if self.look is None:
                self.look = look
            else:
                self.look = tuple(q if p is None else p if q is None else (1 - _LOOK_RATE) * p + _LOOK_RATE * q
                                  for p, q in zip(self.look, look))


class FaceTracker:
    """ByteTrack over face boxes, and person ids that outlive ByteTrack's tracks: `update(faces, frame)` once per
    frame, in frame order; `reset()` between videos.

    `max_missed_frames`: frames a ByteTrack track coasts on its prediction without a matching face. `min_iou`: the
    least overlap between a track's predicted box and a face for them to match; it is low because faces are small
    boxes that move fast for their size, and a prediction that coasted a few frames overlaps its face only a little
    (the assignment is optimal, so the best overlap still wins). Faces scoring `high_score` or more are matched
    first and may start a track (when they also reach `new_track_score`); weaker ones can only continue a track
    that lost its face.

    `reid_frames`: how long a person who lost their track can still be recognised (frames since last seen; 0 turns
    re-identification off). A new ByteTrack track takes a lost person's id when its face is at most `reid_distance`
    face widths from where that person was last seen or was heading, its size within `reid_size` times theirs and,
    when frames are given, its colours (face, hair, clothes) within `reid_look` of theirs. `cut`: how different two
    consecutive frames must be (see `_cut_score`) to count as a cut, which ends every track; after one, a face takes
    a lost person's id on colours alone (within half of `reid_look`, and clearly nearer than any other pairing).
    """

    def __init__(self, max_missed_frames: int = 30, min_iou: float = 0.05, high_score: float = 0.6,
                 new_track_score: float = 0.6, reid_frames: int = 90, reid_distance: float = 1.5,
                 reid_size: float = 1.6, reid_look: float = 0.3, cut: float = 0.45):
        if max_missed_frames < 0:
            raise ValueError(f"max_missed_frames must be >= 0, got {max_missed_frames}")
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
        if reid_frames < 0:
            raise ValueError(f"reid_frames must be >= 0, got {reid_frames}")
        if reid_distance <= 0 or reid_size <= 1.0 or reid_look <= 0 or cut <= 0:
            raise ValueError("reid_distance, reid_look and cut must be positive and reid_size over 1")
        try:
            from trackers import ByteTrackTracker
        except ImportError as exc:
            raise ImportError(f"face tracking needs the `trackers` and `supervision` packages ({exc}); install "
                              "them with `pip install --no-deps supervision==0.31.2 trackers==2.6.1` "
                              "(see requirements-nodeps.txt) or run `make setup`") from None
        self.max_missed_frames = int(max_missed_frames)
        self.reid_frames, self.reid_distance = int(reid_frames), float(reid_distance)
        self.reid_size, self.reid_look, self.cut = float(reid_size), float(reid_look), float(cut)
        # frame_rate=30 makes trackers' lost_track_buffer (counted in 30 fps frames) a plain frame count.
        self._tracker = ByteTrackTracker(lost_track_buffer=self.max_missed_frames, frame_rate=30.0,
                                         track_activation_threshold=new_track_score, minimum_consecutive_frames=1,
                                         minimum_iou_threshold=min_iou, high_conf_det_threshold=high_score)
        self.reset()

    def reset(self) -> None:
        """Forget every track (a new video); ids start again from 0."""
        self._tracker.reset()
        self._people: dict[int, _Person] = {}
        self._person_of: dict[int, int] = {}  # ByteTrack's id -> person id, for the tracks since the last cut
        self._next_id = 0
        self._frame = -1
        self._shot = 0
        self._thumb: Optional[tuple] = None  # the last frame's, for cuts
        self.cuts = 0  # cuts seen since the last reset, for stats and tests

    def update(self, faces: Sequence[Face], frame: Optional[np.ndarray] = None) -> list[Track]:
        """The faces of the next frame, each with its person's id, in the order given. `frame` (the image the
        faces were found on, RGB) lets the tracker see cuts and compare colours when re-identifying; without it
        position and size decide alone."""
        faces = list(faces)
        self._frame += 1
        if frame is not None and self._is_cut(frame):
            # A new shot: boxes in it have nothing to do with the previous one's, so ByteTrack must not match them
            # by overlap (on the stage clip it handed a listener's id to the performer, then the performer's to the
            # President). People of the previous shot can still be recognised, by stricter colours.
            self._tracker.reset()
            self._person_of.clear()
            self._shot += 1
            self.cuts += 1
        raw = self._bytetrack(faces)
        looks = [_looks(frame, f.box) if frame is not None else None for f in faces]
        ids: list[Optional[int]] = [None] * len(faces)
        new = []
        for i, r in enumerate(raw):
            if r is None:
                continue
            person = self._person_of.get(r)
            if person is not None and person not in ids:
                ids[i] = person
            else:
                new.append(i)
        if new:
            self._identify(new, raw, faces, looks, ids)
        for i, person in enumerate(ids):
            if person is not None:
                self._people[person].see(self._frame, self._shot, faces[i].box, looks[i])
        keep = max(self.reid_frames, self.max_missed_frames) + 1
        for person in [p for p in self._people.values() if self._frame - p.seen > keep]:
            del self._people[person.id]
        return [Track(id=i, face=f) for i, f in zip(ids, faces)]

    def _bytetrack(self, faces: list) -> list[Optional[int]]:
        """ByteTrack's id for each face (None for a face on its first frame)."""
        import supervision as sv

        if faces:
            xyxy = np.array([[f.box.x0, f.box.y0, f.box.x1, f.box.y1] for f in faces], np.float32)
            detections = sv.Detections(xyxy=xyxy, confidence=np.array([f.score for f in faces], np.float32),
                                       data={"index": np.arange(len(faces))})
        else:
            detections = sv.Detections.empty()
        # An empty frame still advances the tracks: it is a missed frame for each of them.
        result = self._tracker.update(detections)
        raw: list[Optional[int]] = [None] * len(faces)
        if len(result):
            for index, track_id in zip(result.data["index"], result.tracker_id):
                raw[int(index)] = int(track_id) if track_id >= 0 else None
        return raw

    def _identify(self, new: list[int], raw: list, faces: list, looks: list, ids: list) -> None:
        """Give each face of a new ByteTrack track the id of a recently lost person it matches, else a new id."""
        from scipy.optimize import linear_sum_assignment

        present = {i for i in ids if i is not None}
        lost = [p for p in self._people.values()
                if p.id not in present and 0 < self._frame - p.seen <= self.reid_frames]
        match: dict[int, int] = {}
        if lost:
            # How unlike each new face's colours are to each lost person's (NaN where either has none), once.
            unlike = np.array([[np.nan if (d := _look_distance(p.look, looks[i])) is None else d for p in lost]
                               for i in new], np.float64).reshape(len(new), len(lost))
            cost = np.full((len(new), len(lost)), np.inf)
            for a, i in enumerate(new):
                for b, person in enumerate(lost):
                    cost[a, b] = self._reid_cost(person, faces[i].box, unlike[a, b])
            # Across a cut colours alone decide: a pairing stands only when no other lost person, and no other new
            # face, comes near it (in a dim audience every face has the same colours).
            for a, b in zip(*np.nonzero(np.isfinite(cost))):
                if lost[b].shot == self._shot:
                    continue
                rivals = np.concatenate([np.delete(unlike[a], b), np.delete(unlike[:, b], a)])
                rivals = rivals[~np.isnan(rivals)]
                if rivals.size and unlike[a, b] > _CUT_RIVAL * rivals.min():
                    cost[a, b] = np.inf
            finite = np.isfinite(cost)
            if finite.any():
                rows, cols = linear_sum_assignment(np.where(finite, cost, 1e6))
                match = {new[a]: lost[b].id for a, b in zip(rows, cols) if finite[a, b]}
        for i in new:
            person = match.get(i)
            if person is None:
                person = self._next_id
                self._next_id += 1
                self._people[person] = _Person(person)
            # The person's previous ByteTrack track (still coasting, or ended by a cut) no longer stands for them.
            for r in [r for r, p in self._person_of.items() if p == person]:
                del self._person_of[r]
            self._person_of[raw[i]] = person
            ids[i] = person

    def _reid_cost(self, person: "_Person", box: Box, unlike: float) -> float:
        """How unlike `person` a new face is (lower is likelier the same), or inf when it cannot be them. `unlike`:
        their colours' distance (`_look_distance`), NaN when either has none."""
        gap = self._frame - person.seen
        if np.isnan(unlike):
            unlike = None
        if person.shot != self._shot:
            # Across a cut the camera moved: where a face is and how large says nothing (the stage clip's performer
            # is far away, then a profile filling the frame, then at mid-shot). Only colours can tell, under a
            # stricter limit; `_identify` also wants them clearly nearer than anyone else's.
            if unlike is None or unlike > _CUT_LOOK * self.reid_look:
                return np.inf
            return unlike / (_CUT_LOOK * self.reid_look)
        last = person.box
        scale = max(last.width, box.width, 1.0)
        size = max(box.width / max(last.width, 1e-6), last.width / max(box.width, 1e-6))
        if size > self.reid_size:
            return np.inf
        # Where the face was last seen, or anywhere on the way it was heading (at most half a second of it: a
        # person who stopped, or turned back behind someone, is found too). How far from there it may be grows
        # with the time it was lost, from 40 % of reid_distance to all of it.
        c0 = np.array(last.center)
        step = person.velocity * min(gap, _HEADING_FRAMES)
        c = np.array(box.center)
        t = float(np.clip(np.dot(c - c0, step) / max(float(np.dot(step, step)), 1e-9), 0.0, 1.0))
        distance = float(np.linalg.norm(c - (c0 + t * step))) / scale
        reach = self.reid_distance * (0.4 + 0.6 * min(1.0, gap / max(self.reid_frames, 1)))
        if distance > reach:
            return np.inf
        costs = [distance / reach, np.log(size) / np.log(self.reid_size)]
        if unlike is not None:
            if unlike > self.reid_look:
                return np.inf
            costs.append(unlike / self.reid_look)
        # Each cue may come near its limit, not all of them at once.
        total = float(sum(costs))
        return total if total <= _REID_MEAN * len(costs) else np.inf

    def _is_cut(self, frame: np.ndarray) -> bool:
        thumb = (frame.shape[:2], _thumbnail(frame))
        previous, self._thumb = self._thumb, thumb
        if previous is None:
            return False
        return previous[0] != thumb[0] or _cut_score(previous[1], thumb[1]) > self.cut


@dataclass
class CharacterAssignments:
    """Which character each track is drawn as; tracks nobody assigned (and unconfirmed faces) get `default`."""

    default: str = "classic"
    by_track: dict[int, str] = field(default_factory=dict)

    def assign(self, track_id: Optional[int], character: Optional[str]) -> None:
        """Give a track a character; None takes the assignment back to the default."""
        if track_id is None:
            raise ValueError("this face has no track id yet (it is confirmed on its second frame)")
        if character is None:
            self.by_track.pop(int(track_id), None)
        else:
            self.by_track[int(track_id)] = character

    def character_for(self, track_id: Optional[int]) -> str:
        return self.default if track_id is None else self.by_track.get(int(track_id), self.default)


class FaceFollower:
    """Faces on every frame for the price of a detection every `every` frames.

    In between, each face's points (its landmarks, or a 5×5 grid over its box when it has none) are followed
    from the previous frame by pyramidal Lucas-Kanade flow (of a 478-point mesh, with `features`, only the FOLLOWED
    points the realtime step draws and warps from; the others move with their nearest: as close to fresh detections
    as following all of them, for a third of the points), checked backwards (a point counts when the round
    trip returns within `max_error` px); lost points move with the median of the kept ones, and the box follows
    their median motion and spread. A face with fewer than `min_kept` of its points kept is lost. When a lost
    face was prominent (at least `prominent` of the frame's shorter side wide: its warp would visibly snap
    back), the frame is detected again at once; a small lost face is dropped until the next detection (the
    tracker keeps its id meanwhile), so a crowd does not force a detection on every frame."""

    def __init__(self, backend, every: int = 5, min_kept: float = 0.5, max_error: float = 1.5,
                 prominent: float = 0.12, features: bool = True):
        if every < 1:
            raise ValueError(f"detect_every must be at least 1, got {every}")
        self.features = bool(features)
        self.backend, self.every = backend, int(every)
        self.min_kept, self.max_error, self.prominent = float(min_kept), float(max_error), float(prominent)
        self.reset()  # also zeroes `detections`: the full detections run since, for stats and tests

    def reset(self) -> None:
        self._grey = None
        self._faces: list = []
        self._since = 0
        self.detections = 0

    def __call__(self, frame: np.ndarray) -> list:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        faces = None
        if self._grey is not None and self._since < self.every and self._grey.shape == grey.shape:
            faces = self._follow(self._grey, grey)
        if faces is None:
            faces = self.backend.detect(frame)
            self.detections += 1
            self._since = 0
        self._since += 1
        self._grey, self._faces = grey, faces
        return faces

    def _points(self, face) -> np.ndarray:
        if face.landmarks is not None:
            lm = face.landmarks[:, :2]
            if self.features and len(lm) == MESH_POINTS:
                lm = lm[_FOLLOWED]
            return np.ascontiguousarray(lm, np.float32)
        b = face.box
        gx, gy = np.meshgrid(np.linspace(b.x0 + b.width * 0.2, b.x1 - b.width * 0.2, 5),
                             np.linspace(b.y0 + b.height * 0.2, b.y1 - b.height * 0.2, 5))
        return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)

    def _follow(self, prev: np.ndarray, cur: np.ndarray) -> Optional[list]:
        """The previous faces moved onto `cur` (small lost ones left out), or None when a prominent face is lost
        or there were no faces."""
        if not self._faces:
            return None  # nothing to follow: new faces only come from a detection
        sets = [self._points(f) for f in self._faces]
        pts = np.concatenate(sets).reshape(-1, 1, 2)
        params = dict(winSize=(15, 15), maxLevel=3,
                      criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(prev, cur, pts, None, **params)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(cur, prev, nxt, None, **params)
        ok = (st.ravel() == 1) & (st2.ravel() == 1) & (np.linalg.norm((back - pts).reshape(-1, 2), axis=1)
                                                       < self.max_error)
        nxt = nxt.reshape(-1, 2)
        out, start = [], 0
        for face, p in zip(self._faces, sets):
            k = len(p)
            good, q = ok[start:start + k], nxt[start:start + k]
            start += k
            if good.mean() < self.min_kept:
                if face.box.width >= self.prominent * min(cur.shape[:2]):
                    return None
                continue
            shift = np.median(q[good] - p[good], axis=0)
            q = np.where(good[:, None], q, p + shift)
            spread0, spread1 = p[good].std(axis=0).mean(), q[good].std(axis=0).mean()
            scale = float(np.clip(spread1 / spread0, 0.8, 1.25)) if spread0 > 1e-3 else 1.0
            (cx, cy), (hw, hh) = face.box.center, (face.box.width * scale / 2, face.box.height * scale / 2)
            cx, cy = cx + float(shift[0]), cy + float(shift[1])
            box = Box(cx - hw, cy - hh, cx + hw, cy + hh)
            lm = None
            if face.landmarks is not None:
                lm = face.landmarks.astype(np.float32).copy()
                if len(q) == len(lm):
                    lm[:, :2] = q
                else:
                    lm[:, :2] = _carried(lm[:, :2], p, q)
            kp = None if face.keypoints is None else face.keypoints + np.asarray(shift, face.keypoints.dtype)
            out.append(replace(face, box=box, landmarks=lm, keypoints=kp))
        return out


def _carried(lm: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """A mesh's points `lm` (N, 2) moved as its FOLLOWED points moved from `p` to `q`: those exactly, every other point
    by the inverse-distance mean of the moves of its FOLLOW_NEIGHBOURS nearest followed points."""
    out = lm.copy()
    d = np.sqrt(((lm[_CARRIED, None, :] - p[None, :, :]) ** 2).sum(-1))  # (carried, followed)
    near = np.argpartition(d, FOLLOW_NEIGHBOURS, axis=1)[:, :FOLLOW_NEIGHBOURS]
    w = 1.0 / (np.take_along_axis(d, near, axis=1) + 1e-3)
    move = q - p
    out[_CARRIED] = lm[_CARRIED] + (move[near] * w[..., None]).sum(1) / w.sum(1, keepdims=True)
    out[_FOLLOWED] = q
    return out
