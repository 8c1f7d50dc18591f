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

A face gets its id on its second consecutive frame; on the first its `id` is None (a face seen in one frame
only is most often a false detection). Ids count from 0 and are never reused within one tracker.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

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
