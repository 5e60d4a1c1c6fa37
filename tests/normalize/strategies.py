"""Hypothesis strategies shared by the normalizer tests: any input, dirty typed text, and
valid forms built the way the standards define them (check characters from tests/reference.py,
never from the code under test)."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.reference import resident_id

# No timing in these properties (speed lives in bench/); the suite must stay quick.
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters that are simplified already and that OpenCC leaves alone (checked by a test).
SIMPLIFIED = (
    "张王李赵刘陈杨黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛伟芳娜秀英敏静丽强磊"
    "军洋勇艳杰娟涛明超兰霞平刚桂小红华建国志文斌贵州省遵义安顺毕节铜仁凯里都匀兴义六盘水阳观"
    "山湖区县市志愿者服务队协会青年团委妇联社区中心分会"
)

# Anything a source could send in a text field: any string (no surrogates: hypothesis never
# draws them; a test covers them by hand), numbers, missing values.
any_value = st.one_of(
    st.none(), st.text(), st.text(alphabet=st.characters(codec="utf-8")),
    st.floats(allow_nan=True), st.integers(), st.just(float("nan")),
)
any_text = st.one_of(st.text(), st.text(alphabet=st.characters(max_codepoint=0x3000)))

# Typed-by-people names: pieces that each normalizer step reacts to, in any order.
DIRTY_PIECES = [
    *"貴州省婦聯團總會關愛志願服務隊張偉陳靜",  # traditional
    *"贵州省妇联张伟",  # simplified
    "(tuán)", "(lián)", "（wù）", "[guān]", "(yè)", "(de)", "(tuan2)", "( guì zhōu )", "(Wáng Fāng)", "(Zhang)",
    "(贵阳)", "(筹)", "（中心）", "(GZ)",
    ",", ",,", "，", "、", "。", ";", "；", ":", "!", "?", ",、", ".",
    " ", "  ", "\u3000", "\t", "\n", "\u200b", "\ufeff", "\xa0",
    "ＡＢＣ", "abc", "Team", "１２３", "Co.", "•", "・", "·", "ß", "i\u0307", "ᄀ", "ᅡ",
]
dirty_text = st.lists(st.sampled_from(DIRTY_PIECES), max_size=12).map("".join)

# Valid names: simplified characters, or Latin words with single spaces.
simplified_name = st.text(alphabet=SIMPLIFIED, min_size=1, max_size=8)
latin_name = st.lists(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8),
    min_size=1, max_size=3,
).map(" ".join)
legit_bracket_name = st.tuples(
    simplified_name, st.sampled_from(["(贵阳)", "(筹)", "(中心)", "(GZ)", "(试行)"]), simplified_name
).map("".join)


@st.composite
def valid_resident_ids(draw, latest: dt.date = dt.date(2020, 12, 31)) -> str:
    """A GB 11643 number with a real birth date (1900..latest) and its check character."""
    region = draw(st.sampled_from(["520102", "520115", "520204", "522601", "110105", "330106"]))
    born = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=latest))
    sequence = draw(st.integers(min_value=0, max_value=999))
    return resident_id(f"{region}{born:%Y%m%d}{sequence:03d}")


@st.composite
def valid_legacy_ids(draw) -> str:
    """A 15-digit legacy number (born 1900..1999, two-digit year)."""
    region = draw(st.sampled_from(["520102", "522601", "110105"]))
    born = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(1999, 12, 31)))
    sequence = draw(st.integers(min_value=0, max_value=999))
    return f"{region}{born:%y%m%d}{sequence:03d}"


mobile = st.tuples(
    st.sampled_from("3456789"), st.text(alphabet="0123456789", min_size=9, max_size=9)
).map(lambda p: "1" + p[0] + p[1])

# For properties that run several normalizers per example (each pandas call has a fixed cost
# of a few milliseconds).
PROPERTY_SEVERAL = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
