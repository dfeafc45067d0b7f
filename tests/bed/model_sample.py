"""A sample of a shape of botocore's model with every member filled, nested ones too.

    model_sample.py SERVICE SHAPE      e.g. model_sample.py mwaa Environment

Prints one JSON value: structures with each of their members, lists with one item, maps with
one entry, scalars non-empty. Tests that must know every member AWS may answer (the pause's
check that no setting is lost) read it from here, so a member AWS adds reaches them with the
bed's botocore instead of waiting for someone to copy it into a list.
"""
import json
import sys

from mwaa_local_env import service_model


def sample(shape):
    kind = shape.type_name
    if kind == "structure":
        return {name: sample(member) for name, member in shape.members.items()}
    if kind == "list":
        return [sample(shape.member)]
    if kind == "map":
        return {"x": sample(shape.value)}
    if kind == "boolean":
        return True
    if kind in ("integer", "long", "float", "double"):
        return 1
    return "x"  # strings, timestamps, blobs: any non-empty text


def main():
    service, shape = sys.argv[1:3]
    print(json.dumps(sample(service_model(service).shape_for(shape))))


if __name__ == "__main__":
    main()
