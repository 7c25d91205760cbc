#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""The samples of a router's or an edge's /metrics page, as tests and
benchmarks read them."""

from prometheus_client import parser


def samples(page):
    """``{(sample name, frozenset of its labels): value}`` of a page in
    Prometheus' text format (str or bytes)."""
    if isinstance(page, bytes):
        page = page.decode()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in parser.text_string_to_metric_families(page)
            for sample in family.samples}


def value(found, name, **labels):
    """The value of one sample of :func:`samples`; KeyError if the page
    does not have it."""
    return found[name, frozenset(labels.items())]


def counted(found, name, **labels):
    """A labelled counter's value: 0 where nothing was counted with those
    labels yet (the page lists a set of labels once it has counted)."""
    return found.get((name, frozenset(labels.items())), 0.0)
