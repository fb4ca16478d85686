"""koop_app: serve geodata from anywhere as Esri GeoServices FeatureServers and GeoJSON."""
