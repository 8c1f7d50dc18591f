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


@dataclass(frozen=True)
class Track:
    """One face in one frame and the id of the person it belongs to (None while not yet confirmed)."""

    id: Optional[int]
    face: Face

    @property
    def box(self) -> Box:
        return self.face.box


class FaceTracker:
    """ByteTrack over face boxes: `update(faces)` once per frame, in frame order; `reset()` between videos.

    `max_missed_frames`: frames a track survives without a matching face. `min_iou`: the least overlap
    between a track's predicted box and a face for them to match; it is low because faces are small boxes
    that move fast for their size, and a prediction that coasted a few frames overlaps its face only a
    little (the assignment is optimal, so the best overlap still wins). Faces scoring `high_score` or more
    are matched first and may start a track (when they also reach `new_track_score`); weaker ones can only
    continue a track that lost its face.
    """

    def __init__(self, max_missed_frames: int = 30, min_iou: float = 0.05, high_score: float = 0.6,
                 new_track_score: float = 0.6):
        if max_missed_frames < 0:
            raise ValueError(f"max_missed_frames must be >= 0, got {max_missed_frames}")
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
        try:
            from trackers import ByteTrackTracker
        except ImportError as exc:
            raise ImportError(f"face tracking needs the `trackers` and `supervision` packages ({exc}); install "
                              "them with `pip install --no-deps supervision==0.31.2 trackers==2.6.1` "
                              "(see requirements-nodeps.txt) or run `make setup`") from None
        self.max_missed_frames = int(max_missed_frames)
        # frame_rate=30 makes trackers' lost_track_buffer (counted in 30 fps frames) a plain frame count.
        self._tracker = ByteTrackTracker(lost_track_buffer=self.max_missed_frames, frame_rate=30.0,
                                         track_activation_threshold=new_track_score, minimum_consecutive_frames=1,
                                         minimum_iou_threshold=min_iou, high_conf_det_threshold=high_score)

    def update(self, faces: Sequence[Face]) -> list[Track]:
        """The faces of the next frame, each with its track id, in the order given."""
        import supervision as sv

        faces = list(faces)
        if faces:
            xyxy = np.array([[f.box.x0, f.box.y0, f.box.x1, f.box.y1] for f in faces], np.float32)
            detections = sv.Detections(xyxy=xyxy, confidence=np.array([f.score for f in faces], np.float32),
                                       data={"index": np.arange(len(faces))})
        else:
            detections = sv.Detections.empty()
        # An empty frame still advances the tracks: it is a missed frame for each of them.
        result = self._tracker.update(detections)
        ids: list[Optional[int]] = [None] * len(faces)
        if len(result):
            for index, track_id in zip(result.data["index"], result.tracker_id):
                ids[int(index)] = int(track_id) if track_id >= 0 else None
        return [Track(id=i, face=f) for i, f in zip(ids, faces)]

    def reset(self) -> None:
        """Forget every track (a new video, or a cut); ids start again from 0."""
        self._tracker.reset()


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
    from the previous frame by pyramidal Lucas-Kanade flow, checked backwards (a point counts when the round
    trip returns within `max_error` px); lost points move with the median of the kept ones, and the box follows
    their median motion and spread. A face with fewer than `min_kept` of its points kept is lost. When a lost
    face was prominent (at least `prominent` of the frame's shorter side wide: its warp would visibly snap
    back), the frame is detected again at once; a small lost face is dropped until the next detection (the
    tracker keeps its id meanwhile), so a crowd does not force a detection on every frame."""

    def __init__(self, backend, every: int = 5, min_kept: float = 0.5, max_error: float = 1.5,
                 prominent: float = 0.12):
        if every < 1:
            raise ValueError(f"detect_every must be at least 1, got {every}")
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

    @staticmethod
    def _points(face) -> np.ndarray:
        if face.landmarks is not None:
            return np.ascontiguousarray(face.landmarks[:, :2], np.float32)
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
                lm[:, :2] = q
            kp = None if face.keypoints is None else face.keypoints + np.asarray(shift, face.keypoints.dtype)
            out.append(replace(face, box=box, landmarks=lm, keypoints=kp))
        return out
