"""Names for synthetic owners and companies, and the letter parts of a codice fiscale.

The lists are short and plain ASCII so every file stays encodable in cp1252. Only the
three-letter surname and name parts of a personal code are derived from them; the
names themselves are never written to the survey.
"""

from __future__ import annotations

import numpy as np

from offshoring import taxcode

ITALIAN_SURNAMES = (
    "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo "
    "Conti DeLuca Mancini Costa Giordano Rizzo Lombardi Moretti Barbieri Fontana Santoro "
    "Mariani Rinaldi Caruso Ferrara Galli Martini Leone Longo Gentile Martinelli Vitale "
    "Lombardo Serra Coppola DeSantis DAngelo Marchetti Parisi Villa Conte Ferraro Ferri "
    "Fabbri Bianco Marini Grasso Valentini Messina Sala DeAngelis Gatti Pellegrini Palumbo "
    "Sanna Farina Rizzi Monti Cattaneo Morelli Amato Silvestri Mazza Testa Grassi Carbone "
    "Giuliani Benedetti Barone Rossetti Caputo Montanari Guerra Palmieri Bernardi Martino "
    "Fiore DeRosa Ferretti Bellini Basile Riva Donati Piras Vitali Battaglia Sartori Neri "
    "Costantini Milani Pagano Ruggiero Sorrentino DAmico Orlando Negri Cecchini Bartolini "
    "Tarantino Capone Iannone Scarpa Zanetti Menegatti Pieroni Marcucci Bonfanti Spinelli"
).split()
ITALIAN_MALE = (
    "Giuseppe Giovanni Antonio Mario Luigi Francesco Angelo Vincenzo Pietro Salvatore Carlo "
    "Franco Domenico Bruno Paolo Michele Giorgio Aldo Sergio Luciano Marco Andrea Roberto "
    "Stefano Alessandro Massimo Luca Davide Fabio Simone Claudio Enrico Gianni Maurizio"
).split()
ITALIAN_FEMALE = (
    "Maria Anna Giuseppina Rosa Angela Giovanna Teresa Lucia Carmela Caterina Francesca "
    "Antonietta Carla Elena Concetta Rita Margherita Franca Paola Laura Silvia Roberta "
    "Monica Elisabetta Patrizia Daniela Cristina Barbara Sara Giulia Valentina Federica"
).split()

FOREIGN_NAMES = {
    "Z210": {  # China
        "surnames": "Hu Chen Wang Zhou Lin Zhang Li Huang Xu Ye Wu Zheng Jin Pan Ji Zhu Yang".split(),
        "male": "Wei Jianguo Xiaoming Jun Qiang Bin Hao Lei Jian Ming Gang Tao".split(),
        "female": "Lili Mei Hong Yan Fang Hui Ling Xiaoyan Jing Xiu Juan Ping".split(),
    },
    "Z330": {  # Morocco
        "surnames": "ElAmrani Benali Bouzid Haddad Alaoui Tahiri Bennani Chraibi Idrissi".split(),
        "male": "Mohamed Ahmed Youssef Rachid Abdel Hassan Karim Said".split(),
        "female": "Fatima Khadija Amina Naima Samira Latifa".split(),
    },
    "Z129": {  # Romania
        "surnames": "Popescu Ionescu Popa Radu Stan Dumitru Stoica Munteanu Constantin".split(),
        "male": "Ion Gheorghe Mihai Andrei Vasile Florin Marius Adrian".split(),
        "female": "Elena Maria Ioana Mihaela Andreea Gabriela Cristina".split(),
    },
    "Z100": {  # Albania
        "surnames": "Hoxha Shehu Dervishi Gjoka Leka Kola Marku Prifti Basha".split(),
        "male": "Arben Blerim Ilir Erion Gentian Artan Fatmir Besnik".split(),
        "female": "Elona Besa Anila Mirela Entela Valbona".split(),
    },
}

COMPANY_WORDS = {
    "clothing": ("Confezioni", "Maglificio", "Abbigliamento", "Camiceria", "Moda",
                 "Manifattura", "Tessil Moda", "Confezioni Industriali"),
    "footwear": ("Calzaturificio", "Calzature", "Tomaificio", "Suolificio",
                 "Manifattura Calzature", "Shoes"),
    "other": ("Pelletterie", "Tessitura", "Pellami"),
}
FOREIGN_SUBSIDIARY_WORDS = {
    "europe": ("Fashion SRL", "Textile DOO", "Shoes SRL", "Production SP ZOO", "Konfekcija DOO",
               "Manufacturing SA", "Industrial SRL"),
    "north_africa": ("Confection SARL", "Industries SARL", "Chaussures SARL"),
    "east_asia": ("Garments Co Ltd", "Trading Co Ltd", "Footwear Co Ltd", "Apparel Ltd"),
    "other": ("Inc", "Ltda", "Private Ltd", "SA de CV", "PLC"),
}

_VOWELS = set("AEIOU")


def _letters(word: str) -> tuple[str, str]:
    w = "".join(c for c in word.upper() if c.isalpha())
    return "".join(c for c in w if c not in _VOWELS), "".join(c for c in w if c in _VOWELS)


def surname_part(surname: str) -> str:
    """The three surname letters of a codice fiscale: consonants, vowels, then X."""
    cons, vow = _letters(surname)
    return (cons + vow + "XXX")[:3]


def name_part(name: str) -> str:
    """The three name letters: 1st, 3rd and 4th consonant when there are four or more."""
    cons, vow = _letters(name)
    if len(cons) >= 4:
        return cons[0] + cons[2] + cons[3]
    return (cons + vow + "XXX")[:3]


_OMO = "LMNPQRSTUV"
# positions of the seven digits of a personal code, replaced right to left in omocodia
_DIGIT_POS = (14, 13, 12, 10, 9, 7, 6)


def omocode(code: str, level: int = 1) -> str:
    """The code with its last `level` digits replaced by letters, check letter recomputed."""
    chars = list(code[:15])
    for pos in _DIGIT_POS[:level]:
        chars[pos] = _OMO[int(chars[pos])]
    body = "".join(chars)
    return body + taxcode.personal_check_char(body)


def personal_codes(rng: np.random.Generator, places: list[str], female: np.ndarray,
                   birth_years: np.ndarray, omocodia: np.ndarray, taken: set[str]) -> list[str]:
    """One unique 16-character code per owner.

    `places` holds the birthplace cadastral code (``Z...`` abroad); names are drawn from
    the list of the birth country (Italian lists for Italian places).
    """
    out: list[str] = []
    n = len(places)
    months = rng.integers(1, 13, size=n)
    days = rng.integers(1, 29, size=n)
    picks = rng.random((n, 2))
    for i in range(n):
        place = places[i]
        lists = FOREIGN_NAMES.get(place)
        if lists is None:
            surnames = ITALIAN_SURNAMES
            given = ITALIAN_FEMALE if female[i] else ITALIAN_MALE
        else:
            surnames = lists["surnames"]
            given = lists["female"] if female[i] else lists["male"]
        s = surnames[int(picks[i, 0] * len(surnames))]
        g = given[int(picks[i, 1] * len(given))]
        year, month, day = int(birth_years[i]), int(months[i]), int(days[i])
        code = taxcode.make_personal_code(surname_part(s), name_part(g), year, month, day,
                                          bool(female[i]), place)
        # a clash moves the birth day, as different people are born on different days
        tries = 0
        while code in taken:
            tries += 1
            day = 1 + (day + tries) % 28
            if tries > 28:
                month = 1 + month % 12
            code = taxcode.make_personal_code(surname_part(s), name_part(g), year, month, day,
                                              bool(female[i]), place)
        if omocodia[i]:
            code = omocode(code, 1)
        taken.add(code)
        out.append(code)
    return out


def company_codes(rng: np.random.Generator, office: list[str], taken: set[str]) -> list[str]:
    """Unique 11-digit codes: 7-digit serial, 3-digit provincial office, check digit."""
    out: list[str] = []
    serials = rng.integers(0, 10_000_000, size=len(office))
    for i, off in enumerate(office):
        s = int(serials[i])
        code = taxcode.make_company_code(f"{s:07d}{off}")
        while code in taken:
            s = (s + 7919) % 10_000_000
            code = taxcode.make_company_code(f"{s:07d}{off}")
        taken.add(code)
        out.append(code)
    return out


def company_names(rng: np.random.Generator, sectors: list[str], large: np.ndarray) -> list[str]:
    words = rng.random((len(sectors), 3))
    out = []
    for i, sec in enumerate(sectors):
        pool = COMPANY_WORDS.get(sec, COMPANY_WORDS["other"])
        w = pool[int(words[i, 0] * len(pool))]
        s = ITALIAN_SURNAMES[int(words[i, 1] * len(ITALIAN_SURNAMES))]
        s = s.replace("De", "De ", 1) if s.startswith("De") and len(s) > 3 else s
        s = "D'" + s[1:] if s.startswith("DA") else s
        form = "S.p.A." if large[i] and words[i, 2] < 0.6 else "S.r.l."
        if words[i, 2] > 0.85:
            out.append(f"{w} {s} & C. {form}")
        else:
            out.append(f"{w} {s} {form}")
    return out


def _stem(company: str) -> str:
    """The family part of a company name: 'Calzaturificio De Luca & C. S.r.l.' -> 'De Luca'."""
    s = company
    for suffix in (" S.r.l.", " S.p.A.", " & C."):
        s = s.replace(suffix, "")
    words = {w for pool in COMPANY_WORDS.values() for w in pool}
    for w in sorted(words, key=len, reverse=True):
        if s.startswith(w + " "):
            return s[len(w) + 1:]
    return s


def subsidiary_names(rng: np.random.Generator, parents: list[str], regions: list[str]) -> list[str]:
    u = rng.random(len(parents))
    out = []
    seen: dict[tuple[str, str], int] = {}
    for i, (p, r) in enumerate(zip(parents, regions)):
        pool = FOREIGN_SUBSIDIARY_WORDS[r]
        name = f"{_stem(p)} {pool[int(u[i] * len(pool))]}"
        # a parent's subsidiaries have distinct names (as in AIDA): a repeat gets a number
        k = seen.get((p, name), 0) + 1
        seen[(p, name)] = k
        out.append(name if k == 1 else f"{name} {k}")
    return out
