"""Reference facts and reference computations for the tests, independent of `pipelines/`.

A test's expected value must not come from the code it tests. What is here comes from the
standards and the contract, written out by hand, or from Python's standard library:

* GB 11643-1999 check character of a resident ID number (ISO 7064 MOD 11-2), with the
  standard's weights typed in below (not imported from pipelines.normalize.ids);
* the contract's `id_hash` (docs/CONTRACT.md): lowercase hex HMAC-SHA256 of the normalized
  18-character number under the UTF-8 key, with stdlib `hmac`/`hashlib`;
* the documented project key (docs/DATA_DICTIONARY.md, dim_project.project_key):
  P + the first 12 hex digits of SHA-256 of 'source:source_id';
* Guizhou's current county-level divisions (GB/T 2260, as of the 2021 rename of 黔西县 to
  黔西市): 9 prefecture-level divisions and 88 county-level ones, typed here from the
  published list (not derived from python-stdnum's table, which pipelines/normalize/regions.py
  and sandbox/geo.py read);
* pairwise confusion counts of a clustering against a truth, counted with Counter.

Nothing here imports the project's code.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Iterable

# --------------------------------------------------------------------------------------
# GB 11643-1999 (ISO 7064 MOD 11-2): weight of position i (1..17, left to right) is
# 2^(18-i) mod 11; the check character makes the weighted sum (check weighted 1) ≡ 1 mod 11.
# Remainder of the 17-digit sum mod 11 -> check character:
#   0->1 1->0 2->X 3->9 4->8 5->7 6->6 7->5 8->4 9->3 10->2

GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
GB11643_CHECK = {0: "1", 1: "0", 2: "X", 3: "9", 4: "8", 5: "7", 6: "6", 7: "5", 8: "4", 9: "3", 10: "2"}

# Hand-checked examples (number, check character right?). The first is the example printed
# in GB 11643-1999 itself; the sums are worked out in the comments.
RESIDENT_ID_EXAMPLES = [
    # 1·7+1·9+0·10+1·5+0·8+5·4+1·2+9·1+4·6+9·3+1·7+2·9+3·10+1·5+0·8+0·4+2·2 = 167;
    # 167 mod 11 = 2 -> X
    ("11010519491231002X", True),
    # python-stdnum's own documentation example: sum 231, 231 mod 11 = 0 -> 1
    ("360426199101010071", True),
    # 520102 1990 01 01 12x: 5·7+2·9+0·10+1·5+0·8+2·4 = 66, then
    # 1·2+9·1+9·6+0·3+0·7+1·9+0·10+1·5+1·8 = 87, then 2·4 = 8 and x·2: 161 + 2x
    ("52010219900101123X", True),  # 167 mod 11 = 2 -> X
    ("520102199001011248", True),  # 169 mod 11 = 4 -> 8
    ("520102199001011272", True),  # 175 mod 11 = 10 -> 2
    ("520102199001011280", True),  # 177 mod 11 = 1 -> 0
    # 520115 instead of 520102: +1·8 +3·4 = +20 -> 187 mod 11 = 0 -> 1
    ("520115199001011231", True),
    # the same 17 digits with other check characters
    ("520102199001011240", False),
    ("52010219900101124X", False),
    ("110105194912310021", False),
    ("520115199001011239", False),
]


def resident_id_check_char(first17: str) -> str:
    """The GB 11643 check character of 17 ASCII digits."""
    assert len(first17) == 17 and first17.isascii() and first17.isdigit(), first17
    total = sum(int(digit) * weight for digit, weight in zip(first17, GB11643_WEIGHTS))
    return GB11643_CHECK[total % 11]


def resident_id(first17: str) -> str:
    """A number with the right check character after `first17`."""
    return first17 + resident_id_check_char(first17)


# --------------------------------------------------------------------------------------
# The contract's keyed hash and the documented opaque key.


def id_hash(number: str, key: str) -> str:
    """docs/CONTRACT.md: lowercase hex HMAC-SHA256 of the normalized number under the key
    (both UTF-8)."""
    return hmac.new(key.encode("utf-8"), number.encode("utf-8"), hashlib.sha256).hexdigest()


def sealed_id_suffix(suffix: str, key: str) -> str:
    """docs/DESIGN.md ("Personal data in staged files"): an ID number's last four as staged
    and resolved files hold them, each position through its own permutation of its alphabet
    (the digits; the check character's digits and X), ordered by a SHAKE-256 stream of 8-byte
    little-endian ranks seeded by HMAC-SHA256(key, purpose + the position's byte)."""
    alphabets = ("0123456789",) * 3 + ("0123456789X",)
    sealed = []
    for position, character in enumerate(suffix):
        if position >= len(alphabets) or character not in alphabets[position]:
            sealed.append(character)
            continue
        alphabet = alphabets[position]
        seed = hmac.new(key.encode("utf-8"), b"pipelines.name_seal/cert_suffix4/v1" + bytes([position]),
                        hashlib.sha256).digest()
        stream = hashlib.shake_256(seed).digest(8 * len(alphabet))
        ranks = [int.from_bytes(stream[8 * i:8 * i + 8], "little") for i in range(len(alphabet))]
        order = sorted(range(len(alphabet)), key=lambda i: (ranks[i], i))
        sealed.append(alphabet[order[alphabet.index(character)]])
    return "".join(sealed)


def documented_project_key(source: str, source_id: str) -> str:
    """docs/DATA_DICTIONARY.md: P + 12 hex of SHA-256 of 'source:source_id'."""
    return "P" + hashlib.sha256(f"{source}:{source_id}".encode("utf-8")).hexdigest()[:12]


# --------------------------------------------------------------------------------------
# Guizhou's current divisions (GB/T 2260).

GUIZHOU_PREFECTURES = {
    "5201": "贵阳市",
    "5202": "六盘水市",
    "5203": "遵义市",
    "5204": "安顺市",
    "5205": "毕节市",
    "5206": "铜仁市",
    "5223": "黔西南布依族苗族自治州",
    "5226": "黔东南苗族侗族自治州",
    "5227": "黔南布依族苗族自治州",
}

# code -> name, in code order: 10 + 4 + 14 + 6 + 8 + 10 + 8 + 16 + 12 = 88.
GUIZHOU_COUNTIES = {
    # 贵阳市 (10)
    "520102": "南明区", "520103": "云岩区", "520111": "花溪区", "520112": "乌当区",
    "520113": "白云区", "520115": "观山湖区", "520121": "开阳县", "520122": "息烽县",
    "520123": "修文县", "520181": "清镇市",
    # 六盘水市 (4)
    "520201": "钟山区", "520203": "六枝特区", "520204": "水城区", "520281": "盘州市",
    # 遵义市 (14)
    "520302": "红花岗区", "520303": "汇川区", "520304": "播州区", "520322": "桐梓县",
    "520323": "绥阳县", "520324": "正安县", "520325": "道真仡佬族苗族自治县",
    "520326": "务川仡佬族苗族自治县", "520327": "凤冈县", "520328": "湄潭县", "520329": "余庆县",
    "520330": "习水县", "520381": "赤水市", "520382": "仁怀市",
    # 安顺市 (6)
    "520402": "西秀区", "520403": "平坝区", "520422": "普定县", "520423": "镇宁布依族苗族自治县",
    "520424": "关岭布依族苗族自治县", "520425": "紫云苗族布依族自治县",
    # 毕节市 (8)
    "520502": "七星关区", "520521": "大方县", "520523": "金沙县", "520524": "织金县",
    "520525": "纳雍县", "520526": "威宁彝族回族苗族自治县", "520527": "赫章县", "520581": "黔西市",
    # 铜仁市 (10)
    "520602": "碧江区", "520603": "万山区", "520621": "江口县", "520622": "玉屏侗族自治县",
    "520623": "石阡县", "520624": "思南县", "520625": "印江土家族苗族自治县", "520626": "德江县",
    "520627": "沿河土家族自治县", "520628": "松桃苗族自治县",
    # 黔西南布依族苗族自治州 (8)
    "522301": "兴义市", "522302": "兴仁市", "522323": "普安县", "522324": "晴隆县",
    "522325": "贞丰县", "522326": "望谟县", "522327": "册亨县", "522328": "安龙县",
    # 黔东南苗族侗族自治州 (16)
    "522601": "凯里市", "522622": "黄平县", "522623": "施秉县", "522624": "三穗县",
    "522625": "镇远县", "522626": "岑巩县", "522627": "天柱县", "522628": "锦屏县",
    "522629": "剑河县", "522630": "台江县", "522631": "黎平县", "522632": "榕江县",
    "522633": "从江县", "522634": "雷山县", "522635": "麻江县", "522636": "丹寨县",
    # 黔南布依族苗族自治州 (12)
    "522701": "都匀市", "522702": "福泉市", "522722": "荔波县", "522723": "贵定县",
    "522725": "瓮安县", "522726": "独山县", "522727": "平塘县", "522728": "罗甸县",
    "522729": "长顺县", "522730": "龙里县", "522731": "惠水县", "522732": "三都水族自治县",
}

# Retired codes of the contract (docs/CONTRACT.md) and their successors.
CONTRACT_RENAMES = {"520114": "520115", "520221": "520204", "520222": "520281", "520522": "520581"}


# --------------------------------------------------------------------------------------
# Pairwise confusion.


def pair_confusion(
    predicted: dict[tuple[str, str], str], truth: dict[tuple[str, str], str]
) -> dict[str, int]:
    """Same-entity account pairs: tp (both say same), fp (only predicted), fn (only truth).

    Both map (source, source_id) -> a cluster / true entity; accounts in only one are left
    out. Counted as C(n, 2) per group with collections.Counter."""
    common = predicted.keys() & truth.keys()

    def pairs(groups: Iterable) -> int:
        return sum(n * (n - 1) // 2 for n in Counter(groups).values())

    tp = pairs((predicted[k], truth[k]) for k in common)
    predicted_pairs = pairs(predicted[k] for k in common)
    true_pairs = pairs(truth[k] for k in common)
    return {"accounts": len(common), "tp": tp, "fp": predicted_pairs - tp, "fn": true_pairs - tp}

# The professional fields of the provincial measures (《关于支持和发展志愿服务组织的实施意见》:
# 网络文明、司法、交通、卫健、环保、体育、文旅、扶贫、科普、助残、应急、消防、禁毒、支教), by the
# national service category each is counted under, typed from the document; the other three
# national categories (社区服务, 文化艺术, 其他) are no field.
MEASURE_FIELD_OF_CATEGORY = {
    "网络文明": "网络文明", "法律服务": "司法", "交通引导": "交通", "卫生健康": "卫健",
    "生态环保": "环保", "体育健身": "体育", "文化旅游": "文旅", "扶贫减贫": "扶贫",
    "科技科普": "科普", "助老助残": "助残", "应急救援": "应急", "消防安全": "消防",
    "禁毒宣传": "禁毒", "支教助学": "支教",
}
