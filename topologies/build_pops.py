"""Derive wansim's POP list from the shared Cloudflare colo listing.

    python topologies/build_pops.py [path/to/cloudflare-colos.csv]

Reads `shared/data/cloudflare-colos.csv` (IATA code, city, region; 360 rows, see
`shared/data/README.md`), resolves each code's coordinates with `airportsdata`
(`load("IATA")`) and writes `wansim/data/cloudflare-pops.csv` — the file the package
loads (`wansim.topology.load_pops("cloudflare")`); `topologies/cloudflare-pops.csv`
is a link to it. Nine codes are not IATA airports in airportsdata (city codes, or
airports that closed or were re-coded); their coordinates below come from the
city's airport under its current code (airportsdata's ICAO table) or, where the
city has no airport, from the city centre, and each row says which in `source`.
The output is byte-for-byte reproducible for a given airportsdata release.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import airportsdata

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = REPO.parent / "shared" / "data" / "cloudflare-colos.csv"
OUTPUT = REPO / "wansim" / "data" / "cloudflare-pops.csv"
COLUMNS = ("code", "city", "region", "country", "lat", "lon", "source")

# code -> ICAO identifier of the airport that serves the city today.
BY_ICAO = {
    "FRU": ("UCFM", "Manas International Airport, Bishkek; IATA code now BSZ"),
    "JXG": ("ZSJX", "Jiaxing Nanhu Airport; IATA code JNH"),
    "KIV": ("LUKK", "Chișinău International Airport; IATA code now RMO"),
    "QWJ": ("SDAI", "Americana Airport"),
    "XNH": ("ORTL", "Ali Air Base / Nasiriyah airport, formerly IATA XNH"),
}
# code -> (lat, lon, country, source) for cities without a usable airport record.
CITY_CENTRES = {
    "PNH": (
        11.55, 104.917, "KH",
        "city centre, Wikipedia 'Phnom Penh' (11°33′N 104°55′E); "
        "Phnom Penh International closed in 2025",
    ),
    "ZGN": (
        22.5197, 113.3872, "CN",
        "city centre, OpenStreetMap via mapcarta.com 'Zhongshan' (22.5197, 113.3872); "
        "no airport",
    ),
    "ITJ": (
        -26.9, -48.667, "BR",
        "city centre, Wikipedia 'Itajaí' (26°54′S 48°40′W); its airport, Navegantes, "
        "is the separate POP NVT",
    ),
    "ZDM": (
        31.8969, 35.2017, "PS",
        "city centre, Wikipedia 'Ramallah' (31°53′49″N 35°12′06″E); no airport",
    ),
}


def build(colos_csv: Path) -> list[dict[str, str]]:
    """One output row per input row, in input order."""
    by_iata = airportsdata.load("IATA")
    by_icao = airportsdata.load("ICAO")
    rows = []
    with colos_csv.open(encoding="utf-8", newline="") as f:
        for colo in csv.DictReader(f):
            code = colo["iata"].strip()
            if code in by_iata:
                ap = by_iata[code]
                lat, lon, country = ap["lat"], ap["lon"], ap["country"]
                source = f"airportsdata IATA {code} ({ap['name']})"
            elif code in BY_ICAO:
                icao, why = BY_ICAO[code]
                ap = by_icao[icao]
                lat, lon, country = ap["lat"], ap["lon"], ap["country"]
                source = f"airportsdata ICAO {icao} ({why})"
            elif code in CITY_CENTRES:
                lat, lon, country, source = CITY_CENTRES[code]
            else:
                raise SystemExit(f"{colos_csv}: no coordinates for {code}")
            rows.append(
                {
                    "code": code,
                    "city": colo["city"].strip(),
                    "region": colo["region"].strip(),
                    "country": country,
                    "lat": f"{lat:.6f}",
                    "lon": f"{lon:.6f}",
                    "source": source,
                }
            )
    places = [(r["lat"], r["lon"]) for r in rows]
    if len(set(places)) != len(places):
        raise SystemExit("two POPs share coordinates; give one its own city centre")
    return rows


def main(argv: list[str]) -> None:
    colos = Path(argv[1]) if len(argv) > 1 else DEFAULT_INPUT
    rows = build(colos)
    with OUTPUT.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} POPs to {OUTPUT.relative_to(REPO)}")


if __name__ == "__main__":
    main(sys.argv)
