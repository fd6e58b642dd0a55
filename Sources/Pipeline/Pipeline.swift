import GeoIO
