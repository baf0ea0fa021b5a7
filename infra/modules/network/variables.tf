variable "name" {
  description = "Name prefix."
  type        = string
}

variable "vpc_id" {
  description = "VPC id."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the interface endpoints (the Lambdas' subnets)."
  type        = list(string)
}

variable "route_table_ids" {
  description = "Route tables for the S3 gateway endpoint."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups of the Lambdas that call the endpoints."
  type        = list(string)
}
