"""Models the project trains itself (torch is imported only by importing a model module)."""

# The student's factor inputs, in order. The face warp is not one of them: the realtime path warps faces
# geometrically (from the tracked landmarks) before the student, so the student learns the style alone.
STUDENT_FACTORS = ("line", "texture", "color")


class BadStudent(ValueError):
    """A student folder that cannot be a trained student (its config or weights); the message is one line."""
