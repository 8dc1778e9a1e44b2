{{ "r" if "\\" in cookiecutter.description }}"""Data, models and training logic of this project.

{{ cookiecutter.description | docstring_body }}
"""
