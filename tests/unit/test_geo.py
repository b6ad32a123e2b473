"""Great-circle distances from integer microdegrees."""

from negotiation.geo import distance_m


def test_one_degree_of_latitude_is_about_111_km() -> None:
    assert distance_m(0, 0, 1_000_000, 0) == 111_195


def test_distance_is_symmetric_and_zero_on_the_spot() -> None:
    hz, jx = (30_259_000, 120_130_000), (30_746_000, 120_755_000)
    assert distance_m(*hz, *jx) == distance_m(*jx, *hz)
    assert distance_m(*hz, *hz) == 0


def test_a_50_km_radius_includes_xiaoshan_and_excludes_jiaxing_from_hangzhou() -> None:
    hz = (30_259_000, 120_130_000)
    assert distance_m(*hz, 30_185_000, 120_264_000) <= 50_000
    assert distance_m(*hz, 30_746_000, 120_755_000) > 50_000
