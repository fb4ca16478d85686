[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "$title: a koop_app provider"
requires-python = ">=3.11"
dependencies = ["koop-django"]

[project.entry-points."koop.providers"]
$name = "$module:$class_name"

[tool.setuptools.packages.find]
include = ["$module", "$module.*"]
