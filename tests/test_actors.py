"""studio.actors, the one Ray dispatcher (video folders and teacher pairs): every item comes back once, an actor
that raises keeps working, an actor whose process dies gets no more items and its item fails with the reason, an
actor that cannot work is refused before any item, and Ray started here is shut down on leaving."""
import os
import sys

import pytest

ray = pytest.importorskip("ray")

from studio.actors import RayUnavailable, ray_session, run_on_actors, start_actors  # noqa: E402

# The actor classes below travel by value: Ray's workers cannot import this test module (tests/ is not a package).
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class Squarer:
    def run(self, x):
        if x == "die":
            os._exit(1)  # the process is gone, as when it runs out of memory
        if x < 0:
            raise ValueError(f"negative: {x}")
        return x * x


class Broken:
    def __init__(self, why):
        self.why = why

    def ready(self):
        return self.why


def test_items_come_back_once_and_failures_say_why():
    items = [1, 2, -1, 3, "die", 4, 5]
    with ray_session(num_cpus=2):
        pool = start_actors(Squarer, (), 2)
        done = list(run_on_actors(items, pool, lambda actor, x: actor.run.remote(x)))
        assert ray.is_initialized()
    assert not ray.is_initialized()  # started here, shut down here
    assert sorted(map(str, (item for item, _, _ in done))) == sorted(map(str, items))
    results = {item: (value, why) for item, value, why in done}
    assert {x: results[x][0] for x in (1, 2, 3, 4, 5)} == {1: 1, 2: 4, 3: 9, 4: 16, 5: 25}
    assert results[-1] == (None, "ValueError: negative: -1")
    assert results["die"][0] is None and "died" in results["die"][1]


def test_an_actor_that_cannot_work_is_refused_before_any_item():
    with pytest.raises(RayUnavailable, match="no student for character 'x'"):
        with ray_session(num_cpus=1):
            start_actors(Broken, ("no student for character 'x'",), 1)
    assert not ray.is_initialized()


def test_a_generator_closed_early_shuts_its_ray_down():
    def squares():
        with ray_session(num_cpus=1):
            pool = start_actors(Squarer, (), 1)
            for _, value, _ in run_on_actors(range(10), pool, lambda actor, x: actor.run.remote(x)):
                yield value

    gen = squares()
    assert next(gen) == 0 and ray.is_initialized()
    gen.close()  # the caller stopped (make_pairs on Cancel)
    assert not ray.is_initialized()
